<?php

declare(strict_types=1);

// The handler against a real daemon (SW_DAEMON, SW_TOKEN_FILE), in php-cli with
// session.use_cookies=0: ext/session's real call sequences, no HTTP.

use Sessionward\Client;
use Sessionward\Exception\DataException;
use Sessionward\Exception\StrictModeException;
use Sessionward\Exception\UnavailableException;
use Sessionward\Session;
use Sessionward\SessionHandler;
use Sessionward\SessionId;

function sw_options(array $extra = []): array
{
    return ['daemon' => getenv('SW_DAEMON'), 'token_file' => getenv('SW_TOKEN_FILE')] + $extra;
}

function sw_start(?string $id = null, array $extra = []): SessionHandler
{
    $handler = new SessionHandler(sw_options($extra));
    session_set_save_handler($handler, false);
    session_id($id ?? ''); // '' = a new session (after write_close PHP would resume the last one)
    assert(session_start());
    return $handler;
}

/** The stored data of a PHP session ID, or null (a fresh connection: no lease shared). */
function sw_stored(string $phpId): ?array
{
    $client = Client::fromOptions(sw_options(['persistent' => false]));
    $session = $client->call('load', ['cookie' => SessionId::toCookie($phpId), 'mode' => 'read'])->session ?? null;
    return $session === null ? null : json_decode(json_encode($session->data), true);
}

function test_empty_session_stores_nothing(): void
{
    sw_start();
    $id = session_id();
    assert(strlen($id) === 65);
    session_write_close();
    assert(sw_stored($id) === null);
}

function test_write_stores_json_under_the_issued_id(): void
{
    sw_start();
    $_SESSION['cart'] = [1, 2];
    $id = session_id();
    session_write_close();
    assert(sw_stored($id) === ['cart' => [1, 2]]);
}

function test_unknown_id_replaced_strict_mode(): void
{
    $forged = str_repeat('A', 43) . str_repeat('B', 22);
    sw_start($forged);
    assert(session_id() !== $forged);
    $_SESSION['x'] = 1;
    session_write_close();
    assert(sw_stored($forged) === null);
}

function test_strict_mode_cannot_be_switched_off(): void
{
    $handler = new SessionHandler(sw_options());
    session_set_save_handler($handler, false);
    ini_set('session.use_strict_mode', '0');
    session_id(str_repeat('C', 65));
    expect_throws(StrictModeException::class, fn () => session_start());
    assert(session_status() !== PHP_SESSION_ACTIVE);
}

function test_regenerate_true_rotates_old_dead(): void
{
    sw_start();
    $_SESSION['a'] = 1;
    $old = session_id();
    session_write_close();
    sw_start($old);
    assert($_SESSION === ['a' => 1]);
    assert(session_regenerate_id(true));
    $new = session_id();
    assert($new !== $old);
    assert(sw_stored($old) === null, 'old ID dead at once');
    $_SESSION['b'] = 2;
    session_write_close();
    assert(sw_stored($new) === ['a' => 1, 'b' => 2]);
}

function test_destroy_logs_out(): void
{
    sw_start();
    $_SESSION['a'] = 1;
    $id = session_id();
    session_write_close();
    sw_start($id);
    session_destroy();
    assert(sw_stored($id) === null);
}

function test_login_api_rotates_and_sets_user(): void
{
    $handler = sw_start();
    $_SESSION['before'] = 1;
    $old = session_id();
    $sw = new Session($handler);
    $sw->login('zoe');
    assert(session_id() !== $old && $sw->user() === 'zoe');
    session_write_close();
    assert(sw_stored(session_id()) === ['before' => 1]);
}

function test_object_refused_and_lease_released(): void
{
    sw_start();
    $_SESSION['a'] = 1;
    $id = session_id();
    session_write_close();
    sw_start($id);
    $_SESSION['o'] = new ArrayObject();
    expect_throws(DataException::class, fn () => session_write_close());
    // The lease is free again: another connection locks at once.
    $client = Client::fromOptions(sw_options(['persistent' => false]));
    $locked = $client->call('lock', ['cookie' => SessionId::toCookie($id)])->session;
    assert($locked !== null && isset($locked->lease));
    $client->call('unlock', ['lease' => $locked->lease]);
    assert(sw_stored($id) === ['a' => 1]);
}

function test_daemon_down_is_a_clean_exception(): void
{
    $handler = new SessionHandler(['daemon' => 'sessionward:///nonexistent/sw.sock',
        'token' => str_repeat('x', 40)]);
    session_set_save_handler($handler, false);
    $exc = expect_throws(UnavailableException::class, fn () => session_start());
    assert(str_contains($exc->getMessage(), 'unreachable'));
    assert(session_status() !== PHP_SESSION_ACTIVE);
    session_id(str_repeat('D', 65));
    expect_throws(UnavailableException::class, fn () => session_start());
}

function test_gc_deletes_nothing(): void
{
    sw_start();
    $_SESSION['a'] = 1;
    $id = session_id();
    session_write_close();
    sw_start($id);
    assert(session_gc() === 0);
    session_write_close();
    assert(sw_stored($id) === ['a' => 1]);
}

function test_tokens_consumed_exactly_once(): void
{
    $handler = sw_start();
    $tokens = (new Session($handler))->tokens();
    $token = $tokens->issue('reset', 'zoe', 600, ['n' => 1]);
    assert(strlen($token) === 43);
    assert($tokens->consume('other-purpose', $token) === null, 'another purpose does not consume');
    $grant = $tokens->consume('reset', $token);
    assert($grant !== null && $grant['subject'] === 'zoe' && $grant['data'] === ['n' => 1]);
    assert($tokens->consume('reset', $token) === null, 'second use refused');
    assert($tokens->consume('reset', str_repeat('x', 200)) === null);
    session_write_close();
}

function test_throttle_locks_after_failures(): void
{
    $handler = sw_start();
    $gate = (new Session($handler))->throttle('login', ['attempts' => 3, 'initial' => 30]);
    $user = 'thr-' . bin2hex(random_bytes(4));
    assert($gate->check($user) === 0.0);
    $gate->hit($user);
    $gate->hit($user);
    assert($gate->hit($user) > 0, 'the third failure locks');
    $exc = expect_throws(Sessionward\Exception\ThrottledException::class, fn () => $gate->require($user));
    assert($exc->retryAfter > 0);
    assert($gate->reset($user) === true && $gate->check($user) === 0.0);
    session_write_close();
}

function test_elevate_and_recent_auth(): void
{
    $handler = sw_start();
    $sw = new Session($handler);
    expect_throws(Sessionward\Exception\ReauthenticationRequiredException::class, fn () => $sw->requireRecentAuth(300));
    $_SESSION['x'] = 1;
    $sw->login('yan');
    $sw->requireRecentAuth(300);
    $before = session_id();
    $sw->elevate(120);
    assert(session_id() !== $before && $sw->isElevated());
    assert(sw_stored($before) === null, 'step-up rotated the ID');
    $handle = $sw->handle();
    assert(is_string($handle) && strlen($handle) === 64);
    $devices = $sw->sessionsOf();
    assert(count($devices) === 1 && $devices[0]['current'] === true);
    session_write_close();
}
