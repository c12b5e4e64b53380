<?php

declare(strict_types=1);

// The PHP app the tests and the benchmark drive through nginx + php-fpm.
// ?h= picks the session handler: sw (sessionward, lease mode), sw-opt
// (sessionward, optimistic), files (PHP's own), redis / redis-lock (phpredis).
// Every answer is JSON: {"ok": ..., ...}.

require getenv('SW_CLIENT_DIR') . '/autoload.php';

use Sessionward\Exception\ConflictException;
use Sessionward\Exception\SessionwardException;
use Sessionward\Exception\UnavailableException;

header('Content-Type: application/json');

function answer(array $doc, int $status = 200): never
{
    http_response_code($status);
    echo json_encode($doc, JSON_UNESCAPED_SLASHES);
    exit;
}

$route = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$kind = $_GET['h'] ?? 'sw';
$sw = null;
try {
    switch ($kind) {
        case 'sw':
        case 'sw-opt':
            $handler = new Sessionward\SessionHandler([
                'daemon' => getenv('SW_DAEMON'),
                'token_file' => getenv('SW_TOKEN_FILE'),
                'mode' => $kind === 'sw' ? 'lease' : 'optimistic',
                'unavailable' => ($_GET['down'] ?? '') === '503' ? '503' : 'throw',
            ]);
            session_set_save_handler($handler, true);
            $sw = new Sessionward\Session($handler);
            break;
        case 'files':
            ini_set('session.save_handler', 'files');
            ini_set('session.save_path', getenv('SW_FILES_DIR'));
            break;
        case 'redis':
        case 'redis-lock':
            ini_set('session.save_handler', 'redis');
            ini_set('session.save_path', 'unix://' . getenv('SW_REDIS_SOCKET'));
            ini_set('redis.session.locking_enabled', $kind === 'redis-lock' ? '1' : '0');
            ini_set('redis.session.lock_retries', '-1');
            ini_set('redis.session.lock_wait_time', '2000');
            break;
        default:
            answer(['ok' => false, 'error' => 'unknown handler'], 400);
    }
    $readOnly = $route === '/read';
    session_start($readOnly ? ['read_and_close' => true] : []);
    handle($route, $sw);
} catch (ConflictException $e) {
    answer(['ok' => false, 'error' => 'conflict', 'keys' => $e->keys], 409);
} catch (UnavailableException $e) {
    answer(['ok' => false, 'error' => 'unavailable', 'message' => $e->getMessage()], 503);
} catch (SessionwardException $e) {
    answer(['ok' => false, 'error' => $e->errorType, 'class' => $e::class, 'message' => $e->getMessage()], 500);
}

function handle(string $route, ?Sessionward\Session $sw): never
{
    switch ($route) {
        case '/anon':
            answer(['ok' => true, 'id_len' => strlen(session_id())]);
        case '/anon-sent':
            // The headers (with the reserved ID's cookie) leave before the
            // script ends; nothing is stored.
            echo json_encode(['ok' => true]);
            while (ob_get_level() > 0) {
                ob_end_flush();
            }
            flush();
            exit;
        case '/read':
            answer(['ok' => true, 'session' => $_SESSION]);
        case '/get':
            $doc = ['ok' => true, 'session' => $_SESSION, 'sid' => session_id()];
            session_write_close();
            answer($doc);
        case '/set':
            foreach ($_GET as $k => $v) {
                if ($k !== 'h') {
                    $_SESSION[$k] = $v;
                }
            }
            session_write_close();
            answer(['ok' => true, 'session' => $_SESSION]);
        case '/json':
            $_SESSION['php'] = ['list' => [1, 2, 3], 'float' => 1.5, 'bool' => true, 'null' => null,
                'text' => "h\u{e9}llo", 'nested' => ['a' => ['b' => 'c']]];
            session_write_close();
            answer(['ok' => true]);
        case '/object':
            $_SESSION['obj'] = new ArrayObject([1]);
            session_write_close();
            answer(['ok' => true]);
        case '/append':
            // Read-modify-write with a pause: the lost-update probe.
            $items = $_SESSION['items'] ?? [];
            usleep((int) ($_GET['sleep_ms'] ?? 0) * 1000);
            $items[] = (string) ($_GET['item'] ?? 'x');
            $_SESSION['items'] = $items;
            session_write_close();
            answer(['ok' => true, 'count' => count($items)]);
        case '/bench':
            $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
            $_SESSION['items'][] = (string) ($_GET['item'] ?? 'x');
            session_write_close();
            answer(['ok' => true, 'n' => $_SESSION['n']]);
        case '/disjoint':
            $key = (string) $_GET['key'];
            usleep((int) ($_GET['sleep_ms'] ?? 0) * 1000);
            $_SESSION[$key] = ($_SESSION[$key] ?? 0) + 1;
            session_write_close();
            answer(['ok' => true]);
        case '/regen':
            $old = session_id();
            session_regenerate_id(($_GET['delete'] ?? '1') === '1');
            $_SESSION['regenerated'] = true;
            $new = session_id();
            session_write_close();
            answer(['ok' => true, 'changed' => $old !== $new]);
        case '/destroy':
            session_destroy();
            answer(['ok' => true]);
        case '/login':
            $sw->login((string) $_GET['user']);
            $_SESSION['lang'] = 'php';
            session_write_close();
            answer(['ok' => true, 'user' => $sw->user()]);
        case '/whoami':
            $doc = ['ok' => true, 'user' => $sw->user(), 'session' => $_SESSION];
            session_write_close();
            answer($doc);
        case '/devices':
            $doc = ['ok' => true, 'sessions' => $sw->sessionsOf()];
            session_write_close();
            answer($doc);
        case '/logout':
            $sw->logout();
            answer(['ok' => true]);
        case '/everywhere':
            $n = $sw->revokeUser();
            $sw->logout();
            answer(['ok' => true, 'revoked' => $n]);
        case '/counter':
            $value = $sw->update('counter', fn ($v) => ($v ?? 0) + 1);
            session_write_close();
            answer(['ok' => true, 'counter' => $value]);
        case '/gc':
            answer(['ok' => true, 'gc' => session_gc()]);
        default:
            answer(['ok' => false, 'error' => 'no such route'], 404);
    }
}
