<?php

declare(strict_types=1);

namespace Sessionward\Exception;

/**
 * The session ended (logout, revoke, expiry, login elsewhere) while this
 * request held it: its save is refused so that it cannot resurrect it.
 */
final class SessionGoneException extends SessionwardException
{
}
