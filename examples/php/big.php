<?php
// big.php?mb=N streams N MiB of 'x' in 64 KiB chunks, flushing each one.
$mb = max(0, (int)($_GET['mb'] ?? 1));
header('Content-Type: application/octet-stream');
if (isset($_GET['length'])) {
    header('Content-Length: ' . ($mb * 1048576));
}
while (ob_get_level() > 0) {
    ob_end_flush();
}
$chunk = str_repeat('x', 65536);
for ($i = 0; $i < $mb * 16; $i++) {
    echo $chunk;
    flush();
}
