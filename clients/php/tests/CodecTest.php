<?php

declare(strict_types=1);

use Sessionward\Codec;
use Sessionward\Exception\DataException;

final class Exploding
{
    public static bool $woke = false;

    public function __wakeup(): void
    {
        self::$woke = true;
    }

    public function __destruct()
    {
        self::$woke = true;
    }
}

function test_round_trip_of_json_values(): void
{
    $data = json_decode('{"a":1,"b":[1,2],"c":{"d":null,"e":1.5},"f":"h\u00e9","g":true}');
    $php = Codec::toPhp($data);
    assert($php === ['a' => 1, 'b' => [1, 2], 'c' => ['d' => null, 'e' => 1.5], 'f' => "h\u{e9}", 'g' => true]);
    $payload = Codec::encodeForPhp($data);
    assert(Codec::decodeFromPhp($payload) === $php);
    assert(json_encode(Codec::merge($php, $data)) === json_encode($data));
}

function test_objects_never_instantiated(): void
{
    Exploding::$woke = false;
    $payload = serialize(['x' => new Exploding()]);
    Exploding::$woke = false; // the destructor of the temporary ran above
    $exc = expect_throws(DataException::class, fn () => Codec::decodeFromPhp($payload));
    assert(str_contains($exc->getMessage(), "\$_SESSION['x'] holds an object (Exploding)"));
    assert(Exploding::$woke === false, 'no __wakeup/__destruct of a stored object');
}

function test_nested_object_named_by_path(): void
{
    $payload = serialize(['cart' => ['items' => [new ArrayObject()]]]);
    $exc = expect_throws(DataException::class, fn () => Codec::decodeFromPhp($payload));
    assert(str_contains($exc->getMessage(), "['cart']['items']['0']"));
}

function test_non_json_values_refused(): void
{
    expect_throws(DataException::class, fn () => Codec::decodeFromPhp(serialize(['x' => NAN])));
    expect_throws(DataException::class, fn () => Codec::decodeFromPhp(serialize(['x' => "\xff"])));
    expect_throws(DataException::class, fn () => Codec::decodeFromPhp('garbage'));
    expect_throws(DataException::class, fn () => Codec::decodeFromPhp(serialize('not an array')));
}

function test_untouched_keys_keep_their_json(): void
{
    // {} and [] are both [] in PHP: a key PHP did not change goes back as it came.
    $original = json_decode('{"empty":{},"tag":{"__sw":"dt","v":"2024-01-01T00:00:00"},"n":1}');
    $php = Codec::toPhp($original);
    $php['n'] = 2;
    $merged = json_encode(Codec::merge($php, $original));
    assert($merged === '{"empty":{},"tag":{"__sw":"dt","v":"2024-01-01T00:00:00"},"n":2}', $merged);
}

function test_empty_session(): void
{
    assert(Codec::decodeFromPhp('') === []);
    assert(json_encode(Codec::merge([], new stdClass())) === '{}');
    assert(json_encode(Codec::merge([0 => 'a'], new stdClass())) === '{"0":"a"}');
}
