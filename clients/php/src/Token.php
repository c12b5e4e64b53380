<?php

declare(strict_types=1);

namespace Sessionward;

use Sessionward\Exception\ConfigurationException;

/**
 * Reads the daemon's `app` token from its file, refusing unsafe files.
 *
 * The file must be a regular file (not a symlink), with no group or world
 * permission bits (0600 or 0400), owned by the user PHP runs as (checked
 * when ext-posix is loaded), holding at least 32 characters. These are the
 * daemon's own rules for its token files (docs/PROTOCOL.md §4). The token is
 * never put into an exception message.
 */
final class Token
{
    /** @throws ConfigurationException naming the file and what is wrong with it */
    public static function read(string $path): string
    {
        if ($path === '') {
            throw new ConfigurationException("option 'token_file' (the daemon's app.token) is required", 'configuration');
        }
        clearstatcache(true, $path);
        $link = @lstat($path);
        if ($link === false) {
            throw new ConfigurationException("token file {$path} does not exist or is not readable", 'configuration');
        }
        if (is_link($path) || ($link['mode'] & 0o170000) !== 0o100000) {
            throw new ConfigurationException("token file {$path} must be a regular file, not a symlink", 'configuration');
        }
        if (($link['mode'] & 0o077) !== 0) {
            throw new ConfigurationException(sprintf(
                'token file %s is mode %04o; chmod 600 it (readable by the PHP-FPM user only)',
                $path, $link['mode'] & 0o777), 'configuration');
        }
        if (function_exists('posix_geteuid') && $link['uid'] !== posix_geteuid()) {
            throw new ConfigurationException(
                "token file {$path} is not owned by the user PHP runs as (uid " . posix_geteuid() . ')', 'configuration');
        }
        $token = trim((string) @file_get_contents($path));
        if (strlen($token) < 32) {
            throw new ConfigurationException("token file {$path} holds no token (at least 32 characters)", 'configuration');
        }
        return $token;
    }
}
