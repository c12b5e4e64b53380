<?php

declare(strict_types=1);

namespace Sessionward\Exception;

/**
 * `$_SESSION` holds something JSON cannot carry (an object, a resource,
 * NaN/INF, a non-UTF-8 string). sessionward stores JSON so that Python apps
 * can read it and nothing is ever unserialized into an object.
 */
final class DataException extends SessionwardException
{
}
