<?php

declare(strict_types=1);

namespace Sessionward\Exception;

/** A throttle is locked (`retryAfter` seconds), or this worker's peer is locked out. */
final class ThrottledException extends SessionwardException
{
    public function __construct(string $message, public readonly float $retryAfter = 0.0)
    {
        parent::__construct($message, 'throttled');
    }
}
