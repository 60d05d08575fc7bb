<?php
// For each uploaded file: name, size, md5, sha1 and PHP's upload error code, plus the other fields.
header('Content-Type: application/json');
$files = [];
foreach ($_FILES as $field => $f) {
    $ok = $f['error'] === UPLOAD_ERR_OK;
    $files[$field] = [
        'name' => $f['name'],
        'error' => $f['error'],
        'size' => $ok ? filesize($f['tmp_name']) : 0,
        'md5' => $ok ? md5_file($f['tmp_name']) : null,
        'sha1' => $ok ? sha1_file($f['tmp_name']) : null,
    ];
}
echo json_encode(['files' => (object)$files, 'post' => (object)$_POST],
    JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
