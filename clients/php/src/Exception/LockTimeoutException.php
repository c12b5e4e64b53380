<?php

declare(strict_types=1);

namespace Sessionward\Exception;

/** The exclusive lease could not be acquired within the daemon's `lock_wait` (answer 503). */
final class LockTimeoutException extends SessionwardException
{
}
