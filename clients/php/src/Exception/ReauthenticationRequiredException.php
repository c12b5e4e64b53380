<?php

declare(strict_types=1);

namespace Sessionward\Exception;

/** A sensitive action needs a recent (or any) authentication: ask for the password again. */
final class ReauthenticationRequiredException extends SessionwardException
{
}
