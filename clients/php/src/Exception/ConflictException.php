<?php

declare(strict_types=1);

namespace Sessionward\Exception;

/**
 * An optimistic save lost a race on the same key(s) (`keys`): a concurrent
 * request changed them first. Nothing was overwritten; changes to other keys
 * were merged by the daemon. Answer 409 or retry the request.
 */
final class ConflictException extends SessionwardException
{
    /** @param list<string> $keys */
    public function __construct(string $message, public readonly array $keys = [], string $reason = '')
    {
        parent::__construct($message, 'conflict', $reason);
    }
}
