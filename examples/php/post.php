<?php
// Echoes $_POST and the md5/sha1/size of the raw body (php://input), read as a stream.
header('Content-Type: application/json');
$md5 = hash_init('md5');
$sha1 = hash_init('sha1');
$size = 0;
$in = fopen('php://input', 'rb');
while (!feof($in)) {
    $chunk = fread($in, 65536);
    if ($chunk === false || $chunk === '') {
        break;
    }
    hash_update($md5, $chunk);
    hash_update($sha1, $chunk);
    $size += strlen($chunk);
}
fclose($in);
echo json_encode([
    'post' => (object)$_POST,
    'size' => $size,
    'md5' => hash_final($md5),
    'sha1' => hash_final($sha1),
    'content_length' => $_SERVER['CONTENT_LENGTH'] ?? null,
    'content_type' => $_SERVER['CONTENT_TYPE'] ?? null,
], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
