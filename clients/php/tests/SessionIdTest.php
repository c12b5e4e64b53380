<?php

declare(strict_types=1);

use Sessionward\SessionId;

function random_cookie(): string
{
    $b64 = fn (int $n): string => rtrim(strtr(base64_encode(random_bytes($n)), '+/', '-_'), '=');
    return $b64(32) . '.' . $b64(16);
}

function test_round_trip_is_lossless(): void
{
    for ($i = 0; $i < 2000; $i++) {
        $cookie = random_cookie();
        $php = SessionId::fromCookie($cookie);
        assert($php !== null && strlen($php) === SessionId::PHP_LENGTH);
        assert(preg_match('/\A[a-zA-Z0-9,-]+\z/', $php) === 1, 'PHP session-ID alphabet');
        assert(SessionId::toCookie($php) === $cookie);
    }
}

function test_underscore_becomes_comma(): void
{
    $cookie = str_repeat('_', 43) . '.' . str_repeat('-', 22);
    assert(SessionId::fromCookie($cookie) === str_repeat(',', 43) . str_repeat('-', 22));
}

function test_wrong_shapes_refused(): void
{
    foreach (['', 'abc', str_repeat('a', 64), str_repeat('a', 66), str_repeat('a', 64) . '/',
        '../' . str_repeat('a', 62), str_repeat('a', 64) . "\0", str_repeat('a', 64) . '.',
        str_repeat('a', 64) . "\n"] as $bad) {
        assert(SessionId::toCookie($bad) === null, 'refused: ' . json_encode($bad));
    }
    foreach (['', str_repeat('a', 66), str_repeat('a', 43) . ',' . str_repeat('a', 22),
        str_repeat('a', 43) . '.' . str_repeat('a', 21) . "\n"] as $bad) {
        assert(SessionId::fromCookie($bad) === null);
    }
}
