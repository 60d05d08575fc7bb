<?php
// Index script of /dir/.
header('Content-Type: text/plain');
echo "dir index\n";
echo 'SCRIPT_NAME=', $_SERVER['SCRIPT_NAME'] ?? '', "\n";
