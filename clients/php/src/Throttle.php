<?php

declare(strict_types=1);

namespace Sessionward;

use Sessionward\Exception\ThrottledException;

/**
 * A throttle counted by the daemon for every worker: 5 failures lock the key
 * for 30 s, doubling up to 1 h by default (DESIGN §7). Keyed by user and/or
 * client address; send the same policy from every worker.
 */
final class Throttle
{
    /** @param array<string, int|float> $policy attempts, initial, cap, multiplier, quiet_period */
    public function __construct(
        private readonly Client $client,
        private readonly string $namespace = 'login',
        private readonly array $policy = [],
    ) {
    }

    /** Record a failure; returns the lockout now in force (seconds, 0 if none). */
    public function hit(?string $user = null, ?string $ip = null): float
    {
        return (float) ($this->run('hit', $user, $ip)->lockout ?? 0);
    }

    /** Seconds until the key may try again (0: now). */
    public function check(?string $user = null, ?string $ip = null): float
    {
        return (float) ($this->run('check', $user, $ip)->retry_after ?? 0);
    }

    /** @throws ThrottledException while the key is locked */
    public function require(?string $user = null, ?string $ip = null): void
    {
        $this->run('require', $user, $ip);
    }

    /** Forget the key's failures (after a successful login). */
    public function reset(?string $user = null, ?string $ip = null): bool
    {
        return (bool) ($this->run('reset', $user, $ip)->reset ?? false);
    }

    private function run(string $action, ?string $user, ?string $ip): \stdClass
    {
        $fields = ['action' => $action, 'namespace' => $this->namespace] + $this->policy;
        if ($user !== null) {
            $fields['user'] = $user;
        }
        if ($ip !== null) {
            $fields['ip'] = $ip;
        }
        $data = $this->client->call('throttle', $fields);
        return $data instanceof \stdClass ? $data : new \stdClass();
    }
}
