<?php

declare(strict_types=1);

namespace Sessionward\Exception;

/**
 * PHP asked to read a session ID that was neither validated nor issued by
 * the daemon in this request (session.use_strict_mode was switched off after
 * the handler was built). The ID is refused, never adopted.
 */
final class StrictModeException extends SessionwardException
{
}
