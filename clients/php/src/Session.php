<?php

declare(strict_types=1);

namespace Sessionward;

use Sessionward\Exception\ConflictException;
use Sessionward\Exception\ReauthenticationRequiredException;
use Sessionward\Exception\SessionwardException;

/**
 * What ext/session cannot express: authentication lifecycle, "your devices",
 * step-up, one-time tokens and throttles — the names of the Python
 * `SessionManager` (login, logout, sessions_of -> sessionsOf, revoke_user ->
 * revokeUser...).
 *
 *     $handler = new Sessionward\SessionHandler([...]);
 *     session_set_save_handler($handler, true);
 *     session_start();
 *     $sw = new Sessionward\Session($handler);
 *     $sw->login('alice');          // new ID, the old one dead at once
 *
 * Methods that change the ID (login, elevate, rotate) run through
 * session_regenerate_id(), so PHP itself sends the new cookie: call them
 * before any output, with the session active.
 */
final class Session
{
    public function __construct(private readonly SessionHandler $handler)
    {
    }

    /**
     * Log `$user` in: new ID (the old one dead at once), fresh auth time.
     * Data is kept unless another user was logged in or `$keepData` is false.
     *
     * @throws SessionwardException e.g. ConflictException (reason session_limit)
     */
    public function login(string $user, int $level = 1, bool $pending = false, bool $keepData = true): void
    {
        $previous = $this->user();
        $this->regenerate('login', ['user' => $user, 'level' => $level, 'pending' => $pending,
            'keep_data' => $keepData]);
        if (!$keepData || ($previous !== null && $previous !== $user)) {
            $_SESSION = Codec::toPhp($this->handler->viewData());
        }
    }

    /** Step-up after the app re-checked the password: new ID, elevated for `$seconds`. */
    public function elevate(int $seconds = 300): void
    {
        $this->regenerate('elevate', ['duration' => $seconds]);
    }

    /** Rotate to a new ID now (what session_regenerate_id(true) does too). */
    public function rotate(): void
    {
        $this->regenerate('rotate', ['reason' => 'privilege_change']);
    }

    /**
     * End the session everywhere it is used (the daemon deletes it), clear
     * `$_SESSION` and delete the cookie.
     */
    public function logout(): void
    {
        if (session_status() === PHP_SESSION_ACTIVE) {
            session_destroy();
        }
        $_SESSION = [];
        if (!headers_sent()) {
            $params = session_get_cookie_params();
            setcookie(session_name(), '', [
                'expires' => 1, 'path' => $params['path'], 'domain' => $params['domain'],
                'secure' => $params['secure'], 'httponly' => $params['httponly'],
                'samesite' => $params['samesite'] ?: 'Lax',
            ]);
        }
    }

    /** The logged-in user, or null. */
    public function user(): ?string
    {
        $user = $this->meta()['user'] ?? null;
        return is_string($user) ? $user : null;
    }

    /** The opaque handle of this session ("your devices"; not a cookie), or null if unstored. */
    public function handle(): ?string
    {
        $handle = $this->handler->current()->handle ?? null;
        return is_string($handle) ? $handle : null;
    }

    /** @return array<string, mixed> the daemon's metadata (created, last_seen, user, auth_time...) */
    public function meta(): array
    {
        $meta = $this->handler->current()->meta ?? null;
        return $meta instanceof \stdClass ? Codec::toPhp($meta) : [];
    }

    /** Inside the step-up window (elevate()). */
    public function isElevated(): bool
    {
        $until = $this->meta()['elevated_until'] ?? null;
        return is_numeric($until) && (float) $until > microtime(true);
    }

    /**
     * Guard for sensitive actions: fully logged in within `$maxAgeSeconds`.
     *
     * @throws ReauthenticationRequiredException
     */
    public function requireRecentAuth(int $maxAgeSeconds): void
    {
        $meta = $this->meta();
        if (($meta['user'] ?? null) === null || ($meta['pending'] ?? false)) {
            throw new ReauthenticationRequiredException('log in first', 'invalid_argument', 'reauth_required');
        }
        $authTime = $meta['auth_time'] ?? null;
        if (!is_numeric($authTime) || microtime(true) - (float) $authTime > $maxAgeSeconds) {
            throw new ReauthenticationRequiredException('re-enter your password for this action',
                'invalid_argument', 'reauth_required');
        }
    }

    /**
     * Every live session of `$user` (default: the logged-in one), newest first:
     * handle, device, ip, created, last_seen, expires_at, current... never IDs.
     *
     * @return list<array<string, mixed>>
     */
    public function sessionsOf(?string $user = null): array
    {
        $user ??= $this->user();
        if ($user === null) {
            return [];
        }
        $fields = ['user' => $user];
        if ($this->handle() !== null) {
            $fields['current'] = $this->handle();
        }
        $data = $this->handler->client()->call('sessions_of', $fields);
        return array_values(array_map(fn ($s) => Codec::toPhp($s), (array) ($data->sessions ?? [])));
    }

    /**
     * End every session of `$user` (default: the logged-in one) — "sign out
     * everywhere", Python apps on the same daemon and namespace included.
     *
     * @return int how many sessions ended
     */
    public function revokeUser(?string $user = null, bool $keepCurrent = false): int
    {
        $user ??= $this->user();
        if ($user === null) {
            return 0;
        }
        $fields = ['user' => $user];
        if ($keepCurrent && $this->handle() !== null) {
            $fields['keep'] = $this->handle();
        }
        return (int) ($this->handler->client()->call('revoke_user', $fields)->count ?? 0);
    }

    /**
     * End one of the user's other sessions by handle ("your devices"); needs a
     * login within `$maxAuthAge` seconds.
     *
     * @throws ReauthenticationRequiredException
     */
    public function revokeDevice(string $handle, int $maxAuthAge = 300): bool
    {
        $data = $this->handler->client()->call('revoke_device', $this->handler->state()
            + ['handle' => $handle, 'max_auth_age' => $maxAuthAge]);
        return (bool) ($data->revoked ?? false);
    }

    /**
     * Atomic read-modify-write of one key, safe in every mode: `$fn` gets the
     * stored value (null if absent) and returns the new one; it may run
     * several times. The result is also put into `$_SESSION[$key]`.
     *
     * @throws ConflictException still conflicting after 20 tries
     */
    public function update(string $key, callable $fn): mixed
    {
        if ($this->handler->current() === null) {
            return $_SESSION[$key] = $fn($_SESSION[$key] ?? null); // not stored yet: plain write
        }
        $current = $this->handler->viewData()->{$key} ?? null;
        $present = property_exists($this->handler->viewData(), $key);
        for ($try = 0; $try < 20; $try++) {
            $value = $fn(Codec::toPhp(['v' => $current])['v']);
            $state = $this->handler->state();
            $reply = $this->handler->client()->call('update', $state + [
                'base' => $this->handler->viewData(), 'key' => $key, 'value' => $value,
                'expected' => $current, 'expected_present' => $present,
            ]);
            if ($reply->applied ?? false) {
                $this->handler->replaceView($reply->session);
                $_SESSION[$key] = $value;
                return $value;
            }
            $current = $reply->current ?? null;
            $present = (bool) ($reply->present ?? false);
        }
        throw new ConflictException("update of '{$key}' kept conflicting", [$key]);
    }

    /** One-time tokens (password reset links, e-mail confirmation) held by the daemon. */
    public function tokens(): Tokens
    {
        return new Tokens($this->handler->client());
    }

    /**
     * A throttle shared by every worker (login failures...).
     *
     * @param array<string, int|float> $policy attempts, initial, cap, multiplier, quiet_period
     */
    public function throttle(string $namespace = 'login', array $policy = []): Throttle
    {
        return new Throttle($this->handler->client(), $namespace, $policy);
    }

    /** @param array<string, mixed> $fields */
    private function regenerate(string $command, array $fields): void
    {
        if (session_status() !== PHP_SESSION_ACTIVE) {
            throw new SessionwardException("{$command}(): start the session first", 'invalid_argument');
        }
        $this->handler->queueRotation($command, $fields);
        if (!session_regenerate_id(true)) {
            throw new SessionwardException("{$command}(): could not change the session ID "
                . '(headers already sent? call it before any output)', 'invalid_argument');
        }
    }
}
