<?php
// env.php?k=NAME prints $_SERVER['NAME'] as JSON: {"key": NAME, "value": ... or null}, plus
// the script variables, so a test can tell which route and script answered.
header('Content-Type: application/json');
$k = (string)($_GET['k'] ?? '');
echo json_encode([
    'key' => $k,
    'value' => $k === '' ? null : ($_SERVER[$k] ?? null),
    'script' => 'env.php',
    'SCRIPT_NAME' => $_SERVER['SCRIPT_NAME'] ?? null,
    'SCRIPT_FILENAME' => $_SERVER['SCRIPT_FILENAME'] ?? null,
    'PATH_INFO' => $_SERVER['PATH_INFO'] ?? null,
], JSON_UNESCAPED_SLASHES), "\n";
