<?php
// redirect.php?to=URL[&code=N]: Location header with status N (default 301).
$to = $_GET['to'] ?? '/';
$code = (int)($_GET['code'] ?? 301);
header('Location: ' . str_replace(["\r", "\n"], '', $to), true, $code);
header('Content-Type: text/plain');
echo "redirecting to $to\n";
