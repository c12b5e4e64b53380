<?php

declare(strict_types=1);

// A PSR-4 autoloader for installs without Composer:
//     require '/path/to/clients/php/autoload.php';
// With Composer, `composer require sessionward/sessionward` (path or VCS repository) does this.
spl_autoload_register(static function (string $class): void {
    $prefix = 'Sessionward\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
