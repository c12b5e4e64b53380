<?php

declare(strict_types=1);

namespace Sessionward\Exception;

/**
 * The request's exclusive lease expired or was taken over before the save:
 * the write was refused (fencing) instead of overwriting a newer one.
 */
final class LockLostException extends SessionwardException
{
}
