<?php

declare(strict_types=1);

namespace Sessionward\Exception;

/** The daemon refused the request (`auth_failed`, `forbidden_command`, `invalid_argument`...). */
class ProtocolException extends SessionwardException
{
}
