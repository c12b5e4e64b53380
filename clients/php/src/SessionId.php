<?php

declare(strict_types=1);

namespace Sessionward;

/**
 * The lossless mapping between a daemon cookie value and a PHP session ID.
 *
 * A daemon cookie value is `<43 base64url chars>.<22 base64url chars>`
 * (a 256-bit ID and its 128-bit MAC; alphabet `[A-Za-z0-9_-]` plus the dot).
 * PHP accepts only `[a-zA-Z0-9,-]` in a session ID (php_session_valid_key).
 * The dot always sits at offset 43, so it carries no information and is
 * dropped; `_` becomes `,`. The PHP ID is 65 characters, and the mapping is a
 * bijection between well-formed values: `toCookie(fromCookie($c)) === $c`.
 *
 * This is pure string shuffling: no key, no MAC check. The daemon checks the
 * MAC (in constant time) and is the only holder of keys; a forged PHP ID maps
 * to a forged cookie value and the daemon answers "no session".
 */
final class SessionId
{
    public const PHP_LENGTH = 65;
    private const ID_CHARS = 43;
    private const COOKIE_RE = '/\A[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{22}\z/';
    private const PHP_RE = '/\A[A-Za-z0-9,-]{65}\z/';

    /** The PHP session ID of a daemon cookie value, or null if it is not one. */
    public static function fromCookie(string $cookie): ?string
    {
        if (preg_match(self::COOKIE_RE, $cookie) !== 1) {
            return null;
        }
        return strtr(substr($cookie, 0, self::ID_CHARS) . substr($cookie, self::ID_CHARS + 1), '_', ',');
    }

    /** The daemon cookie value of a PHP session ID, or null for anything of another shape. */
    public static function toCookie(string $phpId): ?string
    {
        if (preg_match(self::PHP_RE, $phpId) !== 1) {
            return null;
        }
        $raw = strtr($phpId, ',', '_');
        return substr($raw, 0, self::ID_CHARS) . '.' . substr($raw, self::ID_CHARS);
    }
}
