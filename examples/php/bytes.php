<?php
// bytes.php?k=NAME prints $_SERVER['NAME'] as lower-case hex (empty when absent), so a test can
// see the exact bytes a header reached PHP with; and answers with a header of Latin-1 bytes
// (X-Latin: "été" in ISO-8859-1), which no UTF-8 decoder must rewrite on the way back.
header('Content-Type: text/plain');
header("X-Latin: \xe9t\xe9");
$k = (string)($_GET['k'] ?? '');
echo bin2hex($k === '' ? '' : (string)($_SERVER[$k] ?? '')), "\n";
