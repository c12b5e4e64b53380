<?php

declare(strict_types=1);

namespace Sessionward\Exception;

/** A handler option, the token file or a php.ini setting is unusable (fix the deployment). */
final class ConfigurationException extends SessionwardException
{
}
