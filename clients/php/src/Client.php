<?php

declare(strict_types=1);

namespace Sessionward;

use Sessionward\Exception\ConfigurationException;
use Sessionward\Exception\ConflictException;
use Sessionward\Exception\LockLostException;
use Sessionward\Exception\LockTimeoutException;
use Sessionward\Exception\ProtocolException;
use Sessionward\Exception\ReauthenticationRequiredException;
use Sessionward\Exception\SessionGoneException;
use Sessionward\Exception\SessionwardException;
use Sessionward\Exception\ThrottledException;
use Sessionward\Exception\UnavailableException;

/**
 * The daemon's `app` commands (docs/PROTOCOL.md §5) over one Connection, with
 * the wire errors of §6 turned into exceptions.
 *
 * This is the layer userland code may use directly (e.g. from a CLI script);
 * the session handler and `Sessionward\Session` build on it.
 */
final class Client
{
    private ?array $queued = null;

    public function __construct(private readonly Connection $connection)
    {
    }

    /**
     * Build a client from handler options (`daemon`, `token_file` or `token`,
     * `timeout`, `connect_timeout`, `persistent`).
     *
     * @param array<string, mixed> $options
     * @throws ConfigurationException
     */
    public static function fromOptions(array $options): self
    {
        $url = (string) ($options['daemon'] ?? getenv('SESSIONWARD_URL') ?: '');
        if ($url === '') {
            throw new ConfigurationException("option 'daemon' (the daemon URL) is required", 'configuration');
        }
        $token = isset($options['token']) ? (string) $options['token'] : Token::read((string) ($options['token_file'] ?? ''));
        return new self(new Connection(
            $url,
            $token,
            (float) ($options['connect_timeout'] ?? 5.0),
            (float) ($options['timeout'] ?? 20.0),
            (bool) ($options['persistent'] ?? true),
        ));
    }

    /** Queue a command that is sent with (before) the next call: one round trip for both. */
    public function queue(string $command, array $fields = []): void
    {
        $this->queued[] = ['command' => $command] + $fields;
    }

    /**
     * Run one command and return its `data`.
     *
     * Queued commands go first and `$after` after it, in the same write (one
     * round trip); a failure of a queued command or of the main one throws,
     * the answers of `$after` (e.g. `unlock`) are not checked.
     *
     * @param array<string, mixed> $fields
     * @param list<array<string, mixed>> $after
     * @throws SessionwardException the mapped wire error (see errorFor())
     */
    public function call(string $command, array $fields = [], array $after = []): mixed
    {
        $batch = $this->queued ?? [];
        $this->queued = null;
        $main = count($batch);
        $batch[] = ['command' => $command] + $fields;
        $replies = $this->connection->pipeline([...$batch, ...$after]);
        for ($i = 0; $i <= $main; $i++) {
            if (!($replies[$i]->ok ?? false)) {
                throw self::errorFor($replies[$i]->error ?? new \stdClass(), (string) $batch[$i]['command']);
            }
        }
        return $replies[$main]->data ?? null;
    }

    /**
     * Send queued commands (if any) now, ignoring their answers except
     * transport failures. Used for `unlock` at close().
     */
    public function flush(): void
    {
        if ($this->queued !== null) {
            $batch = $this->queued;
            $this->queued = null;
            $this->connection->pipeline($batch);
        }
    }

    public function connection(): Connection
    {
        return $this->connection;
    }

    /** The exception for a wire error object (docs/PROTOCOL.md §6). */
    public static function errorFor(\stdClass $error, string $command): SessionwardException
    {
        $type = (string) ($error->type ?? 'internal_error');
        $reason = (string) ($error->reason ?? '');
        $message = "sessionward {$command}: " . (string) ($error->message ?? $type);
        return match (true) {
            $type === 'session_not_found' => new SessionGoneException($message, $type, $reason),
            $type === 'conflict' => new ConflictException($message, array_values(array_map('strval', (array) ($error->keys ?? []))), $reason),
            $type === 'lock_lost' => new LockLostException($message, $type, $reason),
            $type === 'lock_timeout' => new LockTimeoutException($message, $type, $reason),
            $type === 'throttled' => new ThrottledException($message, (float) ($error->retry_after ?? 0)),
            $type === 'invalid_argument' && $reason === 'reauth_required'
                => new ReauthenticationRequiredException($message, $type, $reason),
            $type === 'internal_error' && str_starts_with($reason, 'store')
                => new UnavailableException($message, $type, $reason),
            $type === 'too_many_connections' || $type === 'connection_timeout'
                => new UnavailableException($message, $type, $reason),
            default => new ProtocolException($message, $type, $reason),
        };
    }
}
