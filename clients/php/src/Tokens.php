<?php

declare(strict_types=1);

namespace Sessionward;

/**
 * One-time tokens kept (hashed) by the daemon: issue, consume exactly once,
 * revoke — `remote.tokens` of the Python client.
 */
final class Tokens
{
    public function __construct(private readonly Client $client)
    {
    }

    /** A new token (43 characters) for `$purpose` and `$subject`, valid `$ttl` seconds. */
    public function issue(string $purpose, string $subject, int $ttl = 3600, mixed $data = null): string
    {
        $fields = ['action' => 'issue', 'purpose' => $purpose, 'subject' => $subject, 'ttl' => $ttl];
        if ($data !== null) {
            $fields['data'] = $data;
        }
        return (string) $this->client->call('tokens', $fields)->token;
    }

    /**
     * The grant (`purpose`, `subject`, `data`, `issued_at`, `expires_at`) or
     * null; of any number of concurrent consumers exactly one gets it.
     *
     * @return array<string, mixed>|null
     */
    public function consume(string $purpose, string $token): ?array
    {
        if ($token === '' || strlen($token) > 64) {
            return null;
        }
        $grant = $this->client->call('tokens', ['action' => 'consume', 'purpose' => $purpose,
            'secret' => $token])->grant ?? null;
        return $grant instanceof \stdClass ? Codec::toPhp($grant) : null;
    }

    public function revoke(string $purpose, string $token): bool
    {
        if ($token === '' || strlen($token) > 64) {
            return false;
        }
        return (bool) ($this->client->call('tokens', ['action' => 'revoke', 'purpose' => $purpose,
            'secret' => $token])->revoked ?? false);
    }
}
