<?php

declare(strict_types=1);

// sessionward's PHP example: sign in, "your devices", revoke one, sign out
// everywhere — with PHP's own $_SESSION, over the sessionward daemon.
//
// Run it behind nginx + php-fpm (docs/php.md) with, in the FPM pool:
//   env[SESSIONWARD_URL] = sessionward:///run/sessionward/sessionward.sock
//   env[SESSIONWARD_TOKEN_FILE] = /etc/sessionward/app.token
// Any user name signs in with the password "demo" (a real app checks a hash).

require getenv('SESSIONWARD_CLIENT') ?: __DIR__ . '/../../clients/php/autoload.php';

use Sessionward\Exception\ThrottledException;
use Sessionward\Exception\UnavailableException;
use Sessionward\Session;
use Sessionward\SessionHandler;

$insecureDev = getenv('SW_EXAMPLE_INSECURE_HTTP') === '1'; // plain http on localhost only
session_name($insecureDev ? 'PHPSESSID' : '__Host-PHPSESSID');
session_set_cookie_params(['path' => '/', 'secure' => !$insecureDev, 'httponly' => true, 'samesite' => 'Lax']);

try {
    $handler = new SessionHandler([
        'daemon' => getenv('SESSIONWARD_URL'),
        'token_file' => getenv('SESSIONWARD_TOKEN_FILE'),
    ]);
    session_set_save_handler($handler, true);
    session_start();
} catch (UnavailableException) {
    SessionHandler::respondUnavailable(); // 503 + Retry-After, never a fresh session
}
$sw = new Session($handler);

function h(mixed $text): string
{
    return htmlspecialchars((string) $text, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

function csrf(): string
{
    return $_SESSION['csrf'] ??= bin2hex(random_bytes(16));
}

function page(string $title, string $body): never
{
    header('Content-Type: text/html; charset=utf-8');
    header('Cache-Control: no-store');
    echo "<!doctype html><html lang=en><head><meta charset=utf-8><title>" . h($title)
        . "</title><style>body{font:16px system-ui;margin:2em auto;max-width:40em}"
        . "table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd}"
        . "</style></head><body><h1>" . h($title) . "</h1>{$body}</body></html>";
    exit;
}

function redirect(string $to): never
{
    header('Location: ' . $to, true, 303);
    exit;
}

$route = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
$post = ($_SERVER['REQUEST_METHOD'] ?? 'GET') === 'POST';
// Signed-in forms carry a CSRF token kept in the session; the sign-in form has
// none, so that the anonymous page stores nothing (no record, no cookie) —
// SameSite=Lax covers login CSRF.
if ($post && $route !== '/login' && !hash_equals($_SESSION['csrf'] ?? '', (string) ($_POST['csrf'] ?? ''))) {
    http_response_code(403);
    page('Forbidden', '<p>Stale form: go back and try again.</p>');
}
$form = fn (string $action, string $label, string $fields = '')
    => "<form method=post action='" . h($action) . "'>{$fields}"
    . ($action === '/login' ? '' : "<input type=hidden name=csrf value='" . h(csrf()) . "'>")
    . '<button>' . h($label) . '</button></form>';

if ($route === '/login' && $post) {
    $user = trim((string) ($_POST['user'] ?? ''));
    $gate = $sw->throttle('login');
    $who = $user !== '' ? $user : null;
    try {
        $gate->require($who, $_SERVER['REMOTE_ADDR'] ?? null);
    } catch (ThrottledException $e) {
        http_response_code(429);
        page('Slow down', '<p>Too many failed sign-ins. Try again in ' . (int) ceil($e->retryAfter) . ' s.</p>');
    }
    if ($user === '' || !hash_equals('demo', (string) ($_POST['password'] ?? ''))) {
        $gate->hit($who, $_SERVER['REMOTE_ADDR'] ?? null);
        http_response_code(401);
        page('Sign in', '<p role=alert>Wrong user name or password.</p><p><a href="/">Back</a></p>');
    }
    $gate->reset($who, $_SERVER['REMOTE_ADDR'] ?? null);
    $sw->login($user); // new session ID; the old one is dead at once
    redirect('/');
}
if ($route === '/logout' && $post) {
    $sw->logout();
    redirect('/');
}
if ($route === '/everywhere' && $post && $sw->user() !== null) {
    $sw->revokeUser(); // every session of this user: PHP and Python apps alike
    $sw->logout();
    redirect('/');
}
if ($route === '/revoke' && $post && $sw->user() !== null) {
    $sw->revokeDevice((string) ($_POST['handle'] ?? ''));
    redirect('/');
}

if ($sw->user() === null) {
    page('Sign in', $form('/login', 'Sign in',
        "<p><label>User <input name=user autocomplete=username required></label></p>"
        . "<p><label>Password <input name=password type=password autocomplete=current-password required></label></p>")
        . '<p>Any user name, password <code>demo</code>.</p>');
}
$rows = '';
foreach ($sw->sessionsOf() as $s) {
    $revoke = $s['current'] ? '<b>this device</b>'
        : $form('/revoke', 'Sign out', "<input type=hidden name=handle value='" . h($s['handle']) . "'>");
    $rows .= '<tr><td>' . h($s['device'] ?? '?') . '</td><td>' . h($s['ip'] ?? '') . '</td><td>'
        . h(date('Y-m-d H:i', (int) $s['last_seen'])) . "</td><td>{$revoke}</td></tr>";
}
page('Your devices', '<p>Signed in as <b id=user>' . h($sw->user()) . '</b>.</p>'
    . "<table id=devices><tr><th>Device</th><th>Address</th><th>Last seen</th><th></th></tr>{$rows}</table>"
    . $form('/everywhere', 'Sign out everywhere') . $form('/logout', 'Sign out'));
