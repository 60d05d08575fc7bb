<?php
// status.php?code=N answers with status N.
$code = (int)($_GET['code'] ?? 200);
http_response_code($code);
header('Content-Type: text/plain');
echo "status $code\n";
