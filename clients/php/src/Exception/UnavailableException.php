<?php

declare(strict_types=1);

namespace Sessionward\Exception;

/**
 * The daemon cannot be reached, timed out, refused the connection, or its
 * store is down. The request must fail (HTTP 503): never continue with a
 * fresh, empty session, which would silently log the user out.
 */
final class UnavailableException extends SessionwardException
{
}
