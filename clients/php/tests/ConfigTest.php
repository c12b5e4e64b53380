<?php

declare(strict_types=1);

use Sessionward\Connection;
use Sessionward\Exception\ConfigurationException;
use Sessionward\Token;

function test_daemon_urls(): void
{
    assert(Connection::address('sessionward:///run/sw.sock') === 'unix:///run/sw.sock');
    assert(Connection::address('unix:///run/sw.sock') === 'unix:///run/sw.sock');
    assert(Connection::address('sessionward+tcp://127.0.0.1:7000') === 'tcp://127.0.0.1:7000');
    assert(Connection::address('sessionward+tcp://localhost:7000') === 'tcp://127.0.0.1:7000');
    assert(Connection::address('sessionward+tcp://[::1]:7000') === 'tcp://[::1]:7000');
    foreach (['sessionward+tcp://10.0.0.1:7000', 'sessionward+tcp://0.0.0.0:7000',
        'sessionward+tcp://example.com:7000', 'http://127.0.0.1:1', 'sessionward://relative.sock',
        'sessionward+tcp://127.0.0.1:0', 'sessionward+tcp://127.0.0.1:70000', ''] as $bad) {
        expect_throws(ConfigurationException::class, fn () => Connection::address($bad));
    }
}

function test_token_file_rules(): void
{
    $dir = sys_get_temp_dir() . '/sw-token-' . bin2hex(random_bytes(4));
    mkdir($dir, 0o700);
    $file = "{$dir}/app.token";
    file_put_contents($file, str_repeat('t', 40) . "\n");
    chmod($file, 0o600);
    assert(Token::read($file) === str_repeat('t', 40));
    chmod($file, 0o640);
    $exc = expect_throws(ConfigurationException::class, fn () => Token::read($file));
    assert(str_contains($exc->getMessage(), 'chmod 600'));
    assert(!str_contains($exc->getMessage(), 'tttt'), 'the token never appears in errors');
    chmod($file, 0o600);
    symlink($file, "{$dir}/link");
    expect_throws(ConfigurationException::class, fn () => Token::read("{$dir}/link"));
    file_put_contents("{$dir}/short", 'abc');
    chmod("{$dir}/short", 0o600);
    expect_throws(ConfigurationException::class, fn () => Token::read("{$dir}/short"));
    expect_throws(ConfigurationException::class, fn () => Token::read("{$dir}/missing"));
    expect_throws(ConfigurationException::class, fn () => Token::read(''));
    array_map('unlink', glob("{$dir}/*"));
    rmdir($dir);
}

function test_handler_options_validated(): void
{
    expect_throws(ConfigurationException::class, fn () => new Sessionward\SessionHandler(['mode' => 'files']));
    expect_throws(ConfigurationException::class, fn () => new Sessionward\SessionHandler(['unavailable' => 'ignore']));
    expect_throws(ConfigurationException::class, fn () => new Sessionward\SessionHandler(['token' => str_repeat('x', 40)]));
}
