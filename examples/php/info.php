<?php
// The CGI variables PHP received, as JSON (missing ones are null), plus all HTTP_* and $_GET.
header('Content-Type: application/json');
$keys = ['SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'PATH_TRANSLATED', 'REQUEST_URI',
    'QUERY_STRING', 'REQUEST_METHOD', 'CONTENT_TYPE', 'CONTENT_LENGTH', 'DOCUMENT_ROOT',
    'SERVER_PROTOCOL', 'SERVER_NAME', 'SERVER_PORT', 'REMOTE_ADDR', 'HTTPS', 'REQUEST_SCHEME'];
$out = [];
foreach ($keys as $k) {
    $out[$k] = $_SERVER[$k] ?? null;
}
$http = [];
foreach ($_SERVER as $k => $v) {
    if (strncmp($k, 'HTTP_', 5) === 0) {
        $http[$k] = $v;
    }
}
ksort($http);
$out['HTTP'] = (object)$http;
$out['GET'] = (object)$_GET;
echo json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
