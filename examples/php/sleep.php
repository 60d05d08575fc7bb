<?php
// sleep.php?s=N answers after N seconds.
$s = max(0, (int)($_GET['s'] ?? 1));
sleep($s);
header('Content-Type: text/plain');
echo "slept $s\n";
