<?php

declare(strict_types=1);

namespace Sessionward;

use Sessionward\Exception\DataException;

/**
 * `$_SESSION` <-> the daemon's JSON data, through PHP's `php_serialize` format.
 *
 * PHP hands a save handler the session already encoded by its
 * `session.serialize_handler`; the handler forces `php_serialize`, whose
 * payload is `serialize($_SESSION)`. write() turns it back into an array with
 * `unserialize(..., ['allowed_classes' => false])` — no class is ever
 * instantiated, no `__wakeup`/`__destruct` runs — and refuses anything JSON
 * cannot carry (objects, NaN/INF, non-UTF-8 strings) with a DataException
 * that names the key. read() gives PHP `serialize()` of arrays and scalars
 * decoded from JSON, so the string PHP's session decoder later unserializes
 * cannot contain an object either.
 *
 * Top-level keys PHP did not change keep their exact JSON (see `merge()`),
 * so a value written by Python (an empty object, a tagged datetime) survives
 * a PHP request that did not touch it.
 */
final class Codec
{
    private const MAX_DEPTH = 30; // the daemon allows 32 levels; the request and `data` take two

    /**
     * PHP-side view of daemon data (objects become arrays).
     *
     * @return array<array-key, mixed>
     */
    public static function toPhp(\stdClass|array $data): array
    {
        $out = self::arrays($data);
        return is_array($out) ? $out : [];
    }

    /** The string read() returns to PHP for `$data`. */
    public static function encodeForPhp(\stdClass|array $data): string
    {
        return serialize(self::toPhp($data));
    }

    /**
     * Decode the `php_serialize` payload PHP passes to write().
     *
     * @return array<array-key, mixed>
     * @throws DataException an object, or a payload that is not a serialized array
     */
    public static function decodeFromPhp(string $payload): array
    {
        if ($payload === '') {
            return [];
        }
        $value = @unserialize($payload, ['allowed_classes' => false, 'max_depth' => self::MAX_DEPTH + 2]);
        if (!is_array($value)) {
            throw new DataException(
                'the session payload is not a php_serialize array (is session.serialize_handler '
                . 'still php_serialize? sessionward sets it when the handler is built)', 'data');
        }
        self::check($value, '');
        return $value;
    }

    /**
     * The JSON object to send as `data`: PHP's values for the keys it changed,
     * the original JSON for the keys it did not (by serialized comparison).
     *
     * @param array<array-key, mixed> $php the new `$_SESSION`
     * @param \stdClass $original the data as received from the daemon
     */
    public static function merge(array $php, \stdClass $original): \stdClass
    {
        $out = new \stdClass();
        foreach ($php as $key => $value) {
            $name = (string) $key;
            if (property_exists($original, $name)
                && serialize(self::arrays($original->{$name})) === serialize($value)) {
                $out->{$name} = $original->{$name};
            } else {
                $out->{$name} = $value;
            }
        }
        return $out;
    }

    /** Recursively turn stdClass objects into arrays (JSON objects -> PHP arrays). */
    private static function arrays(mixed $value): mixed
    {
        if ($value instanceof \stdClass) {
            $value = get_object_vars($value);
        }
        if (is_array($value)) {
            foreach ($value as $k => $v) {
                $value[$k] = self::arrays($v);
            }
        }
        return $value;
    }

    /** @throws DataException for anything JSON cannot carry, naming the key path */
    private static function check(mixed $value, string $path, int $depth = 0): void
    {
        if ($depth > self::MAX_DEPTH) {
            throw new DataException("session value {$path} nests deeper than " . self::MAX_DEPTH . ' levels', 'data');
        }
        if (is_array($value)) {
            foreach ($value as $k => $v) {
                self::check($v, $path === '' ? "['{$k}']" : "{$path}['{$k}']", $depth + 1);
                if (is_string($k) && !self::utf8($k)) {
                    throw new DataException("session key in {$path} is not UTF-8 text", 'data');
                }
            }
            return;
        }
        if (is_object($value)) {
            $class = $value instanceof \__PHP_Incomplete_Class
                ? (string) (get_object_vars($value)['__PHP_Incomplete_Class_Name'] ?? 'object')
                : $value::class;
            throw new DataException(
                "\$_SESSION{$path} holds an object ({$class}); sessionward stores JSON, so store "
                . 'arrays and scalars (e.g. the object\'s id or toArray())', 'data');
        }
        if (is_float($value) && !is_finite($value)) {
            throw new DataException("\$_SESSION{$path} is NaN or INF, which JSON cannot carry", 'data');
        }
        if (is_string($value) && !self::utf8($value)) {
            throw new DataException(
                "\$_SESSION{$path} is not UTF-8 text; base64-encode binary data", 'data');
        }
    }

    /** Valid UTF-8 (PCRE's check; mbstring is not a standard extension on Debian). */
    private static function utf8(string $text): bool
    {
        return preg_match('//u', $text) === 1;
    }
}
