<?php

declare(strict_types=1);

namespace Sessionward;

use Sessionward\Exception\ConfigurationException;
use Sessionward\Exception\SessionwardException;
use Sessionward\Exception\StrictModeException;
use Sessionward\Exception\UnavailableException;

/**
 * PHP's session module over the sessionward daemon.
 *
 *     session_set_save_handler(new Sessionward\SessionHandler([
 *         'daemon' => 'sessionward:///run/sessionward/sessionward.sock',
 *         'token_file' => '/etc/sessionward/app.token',
 *     ]), true);
 *     session_start();
 *
 * Build one handler per request (as above); it keeps the request's state.
 * The socket is persistent: one per PHP-FPM worker (see Connection).
 *
 * How PHP's calls map to the daemon (the call order is ext/session's,
 * checked against php-src and pinned by tests/StateMachineTest.php):
 *
 * - session_start(), cookie present: open -> validateId -> read. validateId
 *   is the `lock` (lease mode) or `load`; an unknown, forged, expired or
 *   logged-out ID is refused, so PHP calls create_sid: strict mode, whatever
 *   session.use_strict_mode says (the constructor forces it on, and read()
 *   refuses an ID it neither validated nor issued).
 * - create_sid: `reserve` — the daemon draws the ID; nothing is stored
 *   (docs/PROTOCOL.md, "reserve"). The first write() with data stores it
 *   (`create` with the reservation secret); a request that stores nothing
 *   stores no record, and its queued Set-Cookie is withdrawn when the headers
 *   are still unsent.
 * - A periodic rotation by the daemon (load answers `cookie_changed`):
 *   validateId returns false, PHP calls create_sid, which hands PHP the
 *   successor: PHP itself sends the new cookie.
 * - session_regenerate_id(true|false): destroy(old) or write(old), close,
 *   open, create_sid, validateId(new), read(new). create_sid runs the daemon
 *   `rotate` (or the pending `login`/`elevate` of Sessionward\Session): new ID,
 *   the old one dead at once, data carried. There are no zombie IDs, with or
 *   without `true`.
 * - session_destroy(): destroy -> `logout` (the record is deleted; an
 *   in-flight save elsewhere fails instead of resurrecting it).
 * - session_gc(): 0 — expiry and cleanup are the daemon's.
 * - write(): `save` (fenced by the lease, or version-checked and merged),
 *   updateTimestamp(): nothing (the load already extended the idle time).
 * - close(): `unlock`.
 */
final class SessionHandler implements \SessionHandlerInterface, \SessionIdInterface, \SessionUpdateTimestampHandlerInterface
{
    public const LEASE = 'lease';
    public const OPTIMISTIC = 'optimistic';

    private const INI = [
        'session.use_strict_mode' => '1',
        'session.serialize_handler' => 'php_serialize',
        'session.use_only_cookies' => '1',
        'session.use_trans_sid' => '0',
        'session.lazy_write' => '1',
        'session.gc_probability' => '0',
    ];

    private Client $client;
    private string $mode;
    private bool $readOnlyOption;
    private string $onUnavailable;
    private bool $resetQueued = false;

    /** The stored session this request holds (a session view, docs/PROTOCOL.md §5). */
    private ?\stdClass $view = null;
    /** PHP ID of the current session (stored, or reserved when $view is null). */
    private ?string $phpId = null;
    /** The string read() gave PHP for the current session. */
    private ?string $readPayload = null;
    private bool $readOnly = false;
    /** @var array<string, string> reserved PHP ID => reservation secret (this request only) */
    private array $reserved = [];
    /** @var array<string, true> PHP IDs create_sid issued in this request */
    private array $issued = [];
    /** A view waiting for the next create_sid (periodic rotation). */
    private ?\stdClass $successor = null;
    /** @var array{0: string, 1: array<string, mixed>}|null rotation command for the next regenerate */
    private ?array $pendingRotation = null;
    /** A failure of create_sid/validateId, raised by the read() that follows (see deferred()). */
    private ?SessionwardException $failure = null;

    /** Returned by a failed create_sid; never stored, never sent (read() throws first). */
    private const UNUSABLE_ID = '00000000000000000000000000000000000000000000000000000000000000000';

    /**
     * @param array<string, mixed> $options
     *   - `daemon` (string, required; or env SESSIONWARD_URL): `sessionward:///path.sock`
     *     or `sessionward+tcp://127.0.0.1:PORT`
     *   - `token_file` (string): the daemon's app.token (0600, owned by the PHP user)
     *   - `mode`: `lease` (default: an exclusive lease for the request) or
     *     `optimistic` (no lock; saves merge disjoint keys and report a
     *     same-key conflict with ConflictException)
     *   - `read_only` (bool): load without a lock and never write (like
     *     session_start(['read_and_close' => true]), which is detected too)
     *   - `unavailable`: `throw` (default: UnavailableException) or `503`
     *     (answer 503 + Retry-After and end the request)
     *   - `timeout`, `connect_timeout` (seconds), `persistent` (bool, default true)
     * @throws ConfigurationException bad options, unusable token file, or a session already active
     */
    public function __construct(array $options = [], ?Client $client = null)
    {
        $this->mode = (string) ($options['mode'] ?? self::LEASE);
        if (!in_array($this->mode, [self::LEASE, self::OPTIMISTIC], true)) {
            throw new ConfigurationException("option 'mode' must be 'lease' or 'optimistic'", 'configuration');
        }
        $this->onUnavailable = (string) ($options['unavailable'] ?? 'throw');
        if (!in_array($this->onUnavailable, ['throw', '503'], true)) {
            throw new ConfigurationException("option 'unavailable' must be 'throw' or '503'", 'configuration');
        }
        $this->readOnlyOption = (bool) ($options['read_only'] ?? false);
        $this->client = $client ?? Client::fromOptions($options);
        self::forceIni();
    }

    /** @throws ConfigurationException when a session is active or an ini_set is refused */
    private static function forceIni(): void
    {
        if (session_status() === PHP_SESSION_ACTIVE) {
            throw new ConfigurationException('build the sessionward handler before session_start()', 'configuration');
        }
        foreach (self::INI as $name => $value) {
            if (ini_get($name) !== $value && ini_set($name, $value) === false) {
                throw new ConfigurationException("could not set {$name}={$value} (set it in php.ini)", 'configuration');
            }
        }
    }

    // ------------------------------------------------------------ SessionHandlerInterface

    public function open(string $path, string $name): bool
    {
        $this->failure = null; // a failure belongs to the open/.../read sequence it happened in
        if (!$this->resetQueued && $this->mode === self::LEASE) {
            // First use in this request: release the leases a dead earlier
            // request (a fatal error skips destructors) left on this worker's
            // persistent connection (sent with the next command, no extra
            // round trip). Lock-free mode holds no lease, and the reservations
            // of a dead request are harmless (bounded per connection, their
            // secrets died with it), so it saves the daemon this command.
            $this->client->queue('reset');
            $this->resetQueued = true;
        }
        return true;
    }

    public function close(): bool
    {
        if (Runtime::inside('session_regenerate_id')) {
            return true; // keep the lease: the rotation in create_sid is fenced by it
        }
        $lease = $this->view->lease ?? null;
        if ($lease !== null) {
            unset($this->view->lease);
            return $this->guard(fn () => $this->client->call('unlock', ['lease' => $lease]) !== null);
        }
        return true;
    }

    public function read(string $id): string|false
    {
        if ($this->failure !== null) {
            $failure = $this->failure;
            $this->failure = null;
            Runtime::withdrawCookie();
            $this->forget();
            if ($failure instanceof UnavailableException && $this->onUnavailable === '503') {
                Runtime::respondUnavailable();
            }
            throw $failure;
        }
        if ($id === $this->phpId && ($this->view !== null || isset($this->reserved[$id]))) {
            return $this->readPayload ?? serialize([]);
        }
        if (isset($this->reserved[$id])) {
            return $this->adoptReserved($id);
        }
        // Neither validated nor issued here: session.use_strict_mode was
        // turned off after the handler was built. Validate now; never adopt.
        if (!$this->validateId($id) || $id !== $this->phpId) {
            throw new StrictModeException(
                'refusing an unknown session ID: keep session.use_strict_mode=1 (the sessionward handler sets it)',
                'strict_mode');
        }
        return $this->readPayload ?? serialize([]);
    }

    public function write(string $id, string $data): bool
    {
        try {
            return $this->doWrite($id, $data);
        } catch (\Throwable $exc) {
            // PHP does not call close() for us once write() threw: release the
            // lease now so that other requests do not wait for its TTL.
            $this->releaseLease();
            throw $exc;
        }
    }

    /** Release a lease still held (best effort; the daemon's TTL is the backstop). */
    private function releaseLease(): void
    {
        $lease = $this->view->lease ?? null;
        if ($lease === null) {
            return;
        }
        unset($this->view->lease);
        try {
            $this->client->call('unlock', ['lease' => $lease]);
        } catch (SessionwardException) {
            // The connection is gone or the lease already expired: either way
            // the daemon no longer holds it for this request.
        }
    }

    /** A lease still held when the request ends (an uncaught error) is released. */
    public function __destruct()
    {
        $this->releaseLease();
    }

    private function doWrite(string $id, string $data): bool
    {
        if ($id !== $this->phpId) {
            throw new StrictModeException('write() for a session ID this request does not hold', 'strict_mode');
        }
        if ($this->readOnly) {
            if ($data === $this->readPayload) {
                return true;
            }
            throw new SessionwardException(
                'this session was opened read-only (read_only option); its changes cannot be saved',
                'invalid_argument', 'read_only');
        }
        $values = Codec::decodeFromPhp($data);
        if ($this->view === null) {
            return $this->createReserved($id, $values);
        }
        if ($data === $this->readPayload) {
            return true;
        }
        return $this->guard(function () use ($values): bool {
            $fields = $this->state() + ['data' => Codec::merge($values, $this->viewData())];
            $lease = $this->view->lease ?? null;
            $after = [];
            if ($lease !== null && !Runtime::inside('session_regenerate_id')) {
                $after[] = ['command' => 'unlock', 'lease' => $lease]; // same round trip
            }
            $view = $this->client->call('save', $fields, $after);
            if ($after !== []) {
                unset($view->lease);
            }
            $this->adopt($view, $this->phpId);
            return true;
        });
    }

    public function destroy(string $id): bool
    {
        if (Runtime::inside('session_regenerate_id')) {
            return true; // regenerate(true): the rotation in create_sid kills the old ID
        }
        if ($id === $this->phpId && $this->view !== null) {
            $state = $this->state();
            $this->forget();
            return $this->guard(fn () => $this->client->call('logout', $state) !== null);
        }
        unset($this->reserved[$id]);
        if ($id === $this->phpId) {
            $this->forget();
        }
        return true;
    }

    public function gc(int $max_lifetime): int|false
    {
        return 0; // the daemon expires and cleans up; never per-request GC
    }

    // ---------------------------------------------------------------- SessionIdInterface

    public function create_sid(): string
    {
        return $this->deferred(self::UNUSABLE_ID, function (): string {
            if ($this->successor !== null) {
                $view = $this->successor;
                $this->successor = null;
                return $this->adoptIssued($view);
            }
            if (Runtime::inside('session_regenerate_id')) {
                $view = $this->rotate();
                if ($view !== null) {
                    return $this->adoptIssued($view);
                }
            }
            $reply = $this->client->call('reserve');
            $id = SessionId::fromCookie((string) $reply->cookie)
                ?? throw new SessionwardException('the daemon issued a cookie of an unknown shape', 'protocol');
            $this->reserved[$id] = (string) $reply->reservation;
            $this->issued[$id] = true;
            if (!Runtime::inside('session_create_id')) {
                $this->forget();
                $this->phpId = $id;
                $this->readPayload = serialize([]);
            }
            return $id;
        });
    }

    // ------------------------------------------------- SessionUpdateTimestampHandlerInterface

    public function validateId(string $id): bool
    {
        if (isset($this->issued[$id]) || $id === self::UNUSABLE_ID) {
            return false; // issued in this request: PHP asks whether it collides
        }
        if ($id === $this->phpId && isset($this->view->lease)) {
            return true; // session_reset() while holding the lease: the view is current
        }
        $cookie = SessionId::toCookie($id);
        if ($cookie === null) {
            return false;
        }
        return $this->deferred(true, function () use ($id, $cookie): bool {
            $readOnly = $this->readOnlyOption || Runtime::readAndClose();
            $view = $this->load($cookie, $readOnly);
            if ($view === null) {
                return false;
            }
            if ($view->cookie_changed ?? false) {
                $this->successor = $view; // periodic rotation: create_sid hands PHP the new ID
                $this->readOnly = $readOnly;
                return false;
            }
            $this->adopt($view, $id);
            $this->readOnly = $readOnly;
            return true;
        });
    }

    /**
     * Run `$fn`; a SessionwardException is kept for read() and `$fallback` returned.
     *
     * Why: an exception thrown from create_sid or validateId does not leave
     * session_start() as it is — ext/session then calls create_sid again
     * (or finds no ID) and throws its own Error ("Session id must be a
     * string") with ours buried as `previous`. read() comes next in every
     * path (session_start, session_regenerate_id), and an exception thrown
     * there propagates unchanged, so the failure is raised there instead.
     * The fallback ID is never used: read() throws before anything is read
     * or written, and withdraws the cookie PHP queued for it.
     *
     * @template T
     * @param T $fallback
     * @param callable(): T $fn
     * @return T
     */
    private function deferred(mixed $fallback, callable $fn): mixed
    {
        try {
            return $fn();
        } catch (SessionwardException $exc) {
            $this->failure ??= $exc;
            return $fallback;
        }
    }

    public function updateTimestamp(string $id, string $data): bool
    {
        if ($id === $this->phpId && $this->view === null) {
            Runtime::withdrawCookie(); // unchanged and empty: nothing stored, no cookie
        }
        return true; // a stored session: the load already extended its idle time
    }

    // ------------------------------------------------------ for Sessionward\Session

    /** The daemon client (same connection). */
    public function client(): Client
    {
        return $this->client;
    }

    /** The current stored session's view, or null (nothing stored yet). */
    public function current(): ?\stdClass
    {
        return $this->view;
    }

    /**
     * Run `$command` (`login`, `elevate`, `rotate`) as the rotation of the next
     * session_regenerate_id(); Sessionward\Session calls it before regenerating.
     *
     * @param array<string, mixed> $fields
     */
    public function queueRotation(string $command, array $fields): void
    {
        $this->pendingRotation = [$command, $fields];
    }

    /**
     * The state fields of the current session (docs/PROTOCOL.md §5) plus `client`.
     *
     * @return array<string, mixed>
     */
    public function state(): array
    {
        $fields = ['client' => Runtime::clientInfo()];
        if ($this->view === null) {
            return $fields;
        }
        if (isset($this->view->lease)) {
            return $fields + ['lease' => $this->view->lease];
        }
        return $fields + ['cookie' => $this->view->cookie, 'version' => $this->view->version,
            'base' => $this->view->base ?? $this->view->data];
    }

    /** Replace the current view after a command on it (the PHP ID is unchanged). */
    public function replaceView(\stdClass $view): void
    {
        $lease = $this->view->lease ?? null;
        $this->adopt($view, $this->phpId);
        if ($lease !== null && !isset($view->lease)) {
            $this->view->lease = $lease;
        }
    }

    /** The current session's data as received (a JSON object). */
    public function viewData(): \stdClass
    {
        $data = $this->view->data ?? new \stdClass();
        return $data instanceof \stdClass ? $data : (object) $data;
    }

    // ------------------------------------------------------------------ internals

    private function load(string $cookie, bool $readOnly): ?\stdClass
    {
        if ($this->mode === self::LEASE && !$readOnly) {
            $reply = $this->client->call('lock', ['cookie' => $cookie, 'client' => Runtime::clientInfo()]);
        } else {
            $reply = $this->client->call('load', ['cookie' => $cookie, 'client' => Runtime::clientInfo(),
                'mode' => $readOnly ? 'read' : 'optimistic']);
        }
        $session = $reply->session ?? null;
        return $session instanceof \stdClass ? $session : null;
    }

    /** The daemon rotation for session_regenerate_id(), or null when nothing is stored yet. */
    private function rotate(): ?\stdClass
    {
        [$command, $fields] = $this->pendingRotation ?? ['rotate', ['reason' => 'regenerate']];
        $this->pendingRotation = null;
        if ($this->view === null && $command !== 'login') {
            return null; // nothing stored: a fresh reservation is the whole rotation
        }
        $state = $this->state() + ['data' => $this->viewData()];
        $view = $this->client->call($command, $fields + $state);
        $this->forget();
        return $view;
    }

    private function adoptIssued(\stdClass $view): string
    {
        $id = SessionId::fromCookie((string) $view->cookie)
            ?? throw new SessionwardException('the daemon issued a cookie of an unknown shape', 'protocol');
        $this->issued[$id] = true;
        $this->adopt($view, $id);
        return $id;
    }

    private function adopt(\stdClass $view, ?string $id): void
    {
        $this->view = $view;
        $this->phpId = $id;
        $this->readPayload = Codec::encodeForPhp($this->viewData());
    }

    private function adoptReserved(string $id): string
    {
        $this->forget();
        $this->phpId = $id;
        $this->readPayload = serialize([]);
        return $this->readPayload;
    }

    /** @param array<array-key, mixed> $values */
    private function createReserved(string $id, array $values): bool
    {
        if ($values === []) {
            Runtime::withdrawCookie();
            return true;
        }
        $secret = $this->reserved[$id]
            ?? throw new StrictModeException('refusing to store a session under an ID the daemon did not reserve', 'strict_mode');
        return $this->guard(function () use ($id, $secret, $values): bool {
            unset($this->reserved[$id]);
            $view = $this->client->call('create', ['data' => Codec::merge($values, new \stdClass()),
                'reservation' => $secret, 'client' => Runtime::clientInfo()]);
            $this->adopt($view, $id);
            return true;
        });
    }

    private function forget(): void
    {
        $this->view = null;
        $this->phpId = null;
        $this->readPayload = null;
        $this->readOnly = false;
    }

    /**
     * Run `$fn`; a daemon outage becomes the configured failure (never an empty session).
     *
     * @template T
     * @param callable(): T $fn
     * @return T
     */
    private function guard(callable $fn): mixed
    {
        try {
            return $fn();
        } catch (UnavailableException $exc) {
            if ($this->onUnavailable === '503') {
                Runtime::respondUnavailable();
            }
            throw $exc;
        }
    }

    /** Answer 503 with Retry-After and end the request (option `unavailable => 503`). */
    public static function respondUnavailable(int $retryAfter = 5): never
    {
        Runtime::respondUnavailable($retryAfter);
    }
}
