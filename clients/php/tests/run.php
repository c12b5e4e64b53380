<?php

declare(strict_types=1);

// Minimal test runner on PHP's built-in assertions (run with zend.assertions=1
// and assert.exception=1; tests/php/test_php_unit.py does). Runs every function
// named test_* in the given files; prints one line per failure and a closing
// "N passed, M failed" line; exits 1 on any failure.

require dirname(__DIR__) . '/autoload.php';

if ((int) ini_get('zend.assertions') !== 1) {
    fwrite(STDERR, "run with -d zend.assertions=1 -d assert.exception=1\n");
    exit(2);
}
ini_set('assert.exception', '1');
ob_start(); // CLI: output would count as "headers sent" and block session_start()/regenerate

$files = array_slice($argv, 1) ?: glob(__DIR__ . '/*Test.php');
$before = get_defined_functions()['user'];
foreach ($files as $file) {
    require $file;
}
$tests = array_values(array_filter(array_diff(get_defined_functions()['user'], $before),
    fn (string $name): bool => str_starts_with($name, 'test_')));
$passed = 0;
$failed = 0;
foreach ($tests as $test) {
    try {
        $test();
        $passed++;
    } catch (\Throwable $exc) {
        $failed++;
        printf("FAIL %s: %s: %s (%s:%d)\n", $test, $exc::class, $exc->getMessage(),
            basename($exc->getFile()), $exc->getLine());
    }
    if (session_status() === PHP_SESSION_ACTIVE) {
        @session_abort(); // a failed test must not leave its session to the next one
    }
}
printf("%d passed, %d failed\n", $passed, $failed);
exit($failed === 0 && $passed > 0 ? 0 : 1);

/** Assert that `$fn` throws `$class` (and return it). */
function expect_throws(string $class, callable $fn): \Throwable
{
    try {
        $fn();
    } catch (\Throwable $exc) {
        assert($exc instanceof $class, 'expected ' . $class . ', got ' . $exc::class . ': ' . $exc->getMessage());
        return $exc;
    }
    throw new \AssertionError("expected {$class}, nothing was thrown");
}
