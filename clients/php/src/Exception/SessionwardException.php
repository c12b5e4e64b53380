<?php

declare(strict_types=1);

namespace Sessionward\Exception;

/**
 * Base of every exception the sessionward PHP client throws.
 *
 * `errorType` is the daemon's wire error token (docs/PROTOCOL.md §6) or a
 * client-side one (`unavailable`, `protocol`, `data`, `strict_mode`,
 * `configuration`); `reason` refines it. Messages never hold a cookie, a
 * token or a session ID.
 */
class SessionwardException extends \RuntimeException
{
    public function __construct(
        string $message,
        public readonly string $errorType = 'internal_error',
        public readonly string $reason = '',
        ?\Throwable $previous = null,
    ) {
        parent::__construct($message, 0, $previous);
    }
}
