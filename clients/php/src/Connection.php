<?php

declare(strict_types=1);

namespace Sessionward;

use Sessionward\Exception\ConfigurationException;
use Sessionward\Exception\ProtocolException;
use Sessionward\Exception\UnavailableException;

/**
 * One NDJSON connection to the daemon (docs/PROTOCOL.md §1-3).
 *
 * Persistent by default: `STREAM_CLIENT_PERSISTENT` keeps one socket per
 * PHP-FPM worker process across requests (PHP keys persistent streams by
 * address), so a request costs no connect. A persistent socket can be stale
 * when a request starts — the daemon closed it after its idle timeout (it
 * sends a `connection_timeout` frame first), or an earlier request died in
 * the middle of an exchange and left an unread reply. So before the first
 * request of a PHP request the socket is polled: anything readable on an idle
 * connection (EOF, a timeout frame, a leftover reply) means it is stale; it
 * is closed (the daemon then releases whatever it held) and reopened. Every
 * request carries an `id` and a reply whose `id` does not match closes the
 * connection with an error, so replies can never be paired with the wrong
 * request.
 *
 * Security: only `unix://` paths and loopback TCP (127.0.0.0/8, ::1) are
 * accepted, like the daemon itself; the token is sent in every frame and
 * never appears in an exception message.
 */
final class Connection
{
    private const MAX_REPLY = 16 << 20;

    /** @var resource|null */
    private $stream = null;
    private int $nextId = 0;
    private bool $checked = false;
    private string $address;

    /**
     * @param string $url `sessionward:///path/to.sock`, `unix:///path`, or
     *                    `sessionward+tcp://127.0.0.1:PORT` / `tcp://127.0.0.1:PORT`
     * @throws ConfigurationException for any other URL
     */
    public function __construct(
        string $url,
        private readonly string $token,
        private readonly float $connectTimeout = 5.0,
        private readonly float $readTimeout = 20.0,
        private readonly bool $persistent = true,
    ) {
        $this->address = self::address($url);
        // Ids grow across the requests a worker serves on its persistent
        // socket (hrtime is monotonic per process), so a stale reply is
        // recognisable by its smaller id.
        $this->nextId = intdiv(hrtime(true), 1000) % (1 << 50);
    }

    /** The stream address for `stream_socket_client()`. @throws ConfigurationException */
    public static function address(string $url): string
    {
        if (preg_match('#\A(?:sessionward|unix)://(/[^\0]+)\z#', $url, $m) === 1) {
            return 'unix://' . $m[1];
        }
        if (preg_match('#\A(?:sessionward\+tcp|tcp)://([0-9.]+|\[::1\]|localhost):(\d{1,5})\z#', $url, $m) === 1) {
            $host = $m[1] === 'localhost' ? '127.0.0.1' : $m[1];
            $loopback = $host === '[::1]'
                || (filter_var($host, FILTER_VALIDATE_IP, FILTER_FLAG_IPV4) !== false && str_starts_with($host, '127.'));
            if ($loopback && (int) $m[2] > 0 && (int) $m[2] < 65536) {
                return "tcp://{$host}:{$m[2]}";
            }
        }
        throw new ConfigurationException(
            'daemon URL must be sessionward:///path/to/sessionward.sock or '
            . 'sessionward+tcp://127.0.0.1:PORT (loopback only)', 'configuration');
    }

    /**
     * Send `$requests` in one write (pipelined) and return their replies in order.
     *
     * Each reply is the decoded response object (`ok`, `data` or `error`).
     *
     * @param list<array<string, mixed>> $requests command name and fields, without token/id
     * @return list<\stdClass>
     * @throws UnavailableException connect/write/read failure or timeout (the connection is dropped)
     * @throws ProtocolException a reply that is not JSON or does not match its request
     */
    public function pipeline(array $requests): array
    {
        $stream = $this->stream();
        $ids = [];
        $out = '';
        foreach ($requests as $request) {
            $id = ++$this->nextId;
            $ids[] = $id;
            $out .= json_encode(['token' => $this->token, 'id' => $id] + $request,
                JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION) . "\n";
        }
        $this->writeAll($stream, $out);
        $replies = [];
        foreach ($ids as $id) {
            $reply = $this->readReply($stream);
            // A late reply to a request of an earlier PHP request that died
            // mid-exchange carries another id of this process: skip it.
            for ($stale = 0; isset($reply->id) && is_int($reply->id) && $reply->id < $ids[0] && $stale < 16; $stale++) {
                $reply = $this->readReply($stream);
            }
            if (!isset($reply->id) || $reply->id !== $id) {
                $this->drop();
                $type = $reply->error->type ?? '';
                if (in_array($type, ['connection_timeout', 'too_many_connections', 'throttled'], true)) {
                    throw new UnavailableException("sessionward daemon closed the connection ({$type})", $type);
                }
                throw new ProtocolException('sessionward daemon reply does not match its request', 'protocol');
            }
            $replies[] = $reply;
        }
        return $replies;
    }

    /** Close the socket (the daemon releases this connection's leases and reservations). */
    public function drop(): void
    {
        if (is_resource($this->stream)) {
            @fclose($this->stream);
        }
        $this->stream = null;
        $this->checked = false;
    }

    /** @return resource @throws UnavailableException */
    private function stream()
    {
        if (is_resource($this->stream) && $this->checked) {
            return $this->stream;
        }
        if (!is_resource($this->stream)) {
            $this->stream = $this->open();
        }
        if (!$this->idle($this->stream)) {
            $this->drop();
            $this->stream = $this->open();
        }
        $this->checked = true;
        return $this->stream;
    }

    /**
     * True when an idle socket has nothing to read (not closed, no leftovers).
     *
     * @param resource $stream
     */
    private function idle($stream): bool
    {
        $read = [$stream];
        $none = null;
        $ready = @stream_select($read, $none, $none, 0, 0);
        return $ready === 0 && !feof($stream);
    }

    /** @return resource @throws UnavailableException */
    private function open()
    {
        $flags = STREAM_CLIENT_CONNECT | ($this->persistent ? STREAM_CLIENT_PERSISTENT : 0);
        $errno = 0;
        $errstr = '';
        $stream = @stream_socket_client($this->address, $errno, $errstr, $this->connectTimeout, $flags);
        if ($stream === false) {
            throw new UnavailableException(
                'sessionward daemon unreachable: ' . self::clean($errstr ?: "error {$errno}"), 'unavailable');
        }
        stream_set_blocking($stream, true);
        $seconds = (int) $this->readTimeout;
        stream_set_timeout($stream, $seconds, (int) (($this->readTimeout - $seconds) * 1e6));
        return $stream;
    }

    /** @param resource $stream @throws UnavailableException */
    private function writeAll($stream, string $data): void
    {
        while ($data !== '') {
            $n = @fwrite($stream, $data);
            if ($n === false || $n === 0) {
                $this->drop();
                throw new UnavailableException('sessionward daemon connection lost while sending', 'unavailable');
            }
            $data = substr($data, $n);
        }
    }

    /** @param resource $stream @throws UnavailableException|ProtocolException */
    private function readReply($stream): \stdClass
    {
        $line = @fgets($stream, self::MAX_REPLY);
        if ($line === false || !str_ends_with($line, "\n")) {
            $timedOut = (bool) (stream_get_meta_data($stream)['timed_out'] ?? false);
            $this->drop();
            throw new UnavailableException($timedOut
                ? 'sessionward daemon did not answer in time'
                : 'sessionward daemon closed the connection', 'unavailable');
        }
        try {
            $reply = json_decode($line, false, 512, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
        } catch (\JsonException $exc) {
            $this->drop();
            throw new ProtocolException('sessionward daemon sent a reply that is not JSON', 'protocol', '', $exc);
        }
        if (!$reply instanceof \stdClass) {
            $this->drop();
            throw new ProtocolException('sessionward daemon sent a reply that is not an object', 'protocol');
        }
        return $reply;
    }

    private static function clean(string $text): string
    {
        return substr((string) preg_replace('/[^\x20-\x7e]/', ' ', $text), 0, 200);
    }
}
