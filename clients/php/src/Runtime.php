<?php

declare(strict_types=1);

namespace Sessionward;

/**
 * What the handler needs to know about the PHP request it runs in: which
 * ext/session function called it, the client (for binding and "your
 * devices"), the queued session cookie, and the 503 answer.
 *
 * Why the call stack: ext/session calls destroy() both for session_destroy()
 * and inside session_regenerate_id(true), and create_sid() for session_start(),
 * session_regenerate_id() and session_create_id(); the handler must tell them
 * apart (a regenerate must rotate, never log out). Its internal frames are on
 * the stack that debug_backtrace() returns (checked on PHP 8.2, pinned by
 * clients/php/tests/HandlerTest.php).
 */
final class Runtime
{
    /**
     * Withdraw the session cookie PHP queued at session_start() for an ID
     * that was never stored (lazy creation: no record, no cookie). Only
     * possible while the headers are unsent; otherwise the cookie names an
     * ID the daemon does not know, which the next request replaces (strict).
     */
    public static function withdrawCookie(): void
    {
        if (headers_sent()) {
            return;
        }
        $prefix = 'set-cookie: ' . strtolower(session_name()) . '=';
        $keep = [];
        $ours = false;
        foreach (headers_list() as $header) {
            if (str_starts_with(strtolower($header), 'set-cookie:')) {
                if (str_starts_with(strtolower((string) preg_replace('/^set-cookie:\s*/i', 'set-cookie: ', $header)), $prefix)) {
                    $ours = true;
                } else {
                    $keep[] = $header;
                }
            }
        }
        if ($ours) {
            header_remove('Set-Cookie');
            foreach ($keep as $header) {
                header($header, false);
            }
        }
    }

    /** The `client` object (ip, user_agent) for binding and "your devices"; `{}` in php-cli. */
    public static function clientInfo(): \stdClass
    {
        return (object) self::clientFields();
    }

    /** @return array<string, string> */
    private static function clientFields(): array
    {
        $info = [];
        if (isset($_SERVER['REMOTE_ADDR']) && is_string($_SERVER['REMOTE_ADDR'])) {
            $info['ip'] = substr($_SERVER['REMOTE_ADDR'], 0, 64);
        }
        if (isset($_SERVER['HTTP_USER_AGENT']) && is_string($_SERVER['HTTP_USER_AGENT'])) {
            $ua = substr($_SERVER['HTTP_USER_AGENT'], 0, 512);
            if (preg_match('//u', $ua) === 1) {
                $info['user_agent'] = $ua;
            }
        }
        return $info;
    }

    /** Whether the session call in progress comes from `$function` (ext/session's own frames). */
    public static function inside(string $function): bool
    {
        foreach (debug_backtrace(DEBUG_BACKTRACE_IGNORE_ARGS, 16) as $frame) {
            if (!isset($frame['class']) && $frame['function'] === $function) {
                return true;
            }
        }
        return false;
    }

    /** session_start(['read_and_close' => true]) in progress: load without a lock. */
    public static function readAndClose(): bool
    {
        foreach (debug_backtrace(0, 16) as $frame) {
            if (!isset($frame['class']) && $frame['function'] === 'session_start') {
                $options = $frame['args'][0] ?? [];
                return is_array($options) && !empty($options['read_and_close']);
            }
        }
        return false;
    }


    /** Answer 503 with Retry-After and end the request (option `unavailable => 503`). */
    public static function respondUnavailable(int $retryAfter = 5): never
    {
        if (!headers_sent()) {
            header_remove('Set-Cookie');
            http_response_code(503);
            header('Retry-After: ' . $retryAfter);
            header('Content-Type: text/plain; charset=utf-8');
            header('Cache-Control: no-store');
        }
        echo "Service temporarily unavailable (session service down). Please retry shortly.\n";
        exit(1);
    }
}
