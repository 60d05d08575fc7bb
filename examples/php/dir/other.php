<?php
// Alternative index script of /dir/ (for a route with `index = other.php`).
header('Content-Type: text/plain');
echo "dir other\n";
echo 'SCRIPT_NAME=', $_SERVER['SCRIPT_NAME'] ?? '', "\n";
