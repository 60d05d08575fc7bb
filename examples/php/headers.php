<?php
// Every HTTP_* variable PHP received (proves e.g. that HTTP_PROXY is absent), as a JSON object.
header('Content-Type: application/json');
$http = [];
foreach ($_SERVER as $k => $v) {
    if (strncmp($k, 'HTTP_', 5) === 0) {
        $http[$k] = $v;
    }
}
ksort($http);
echo json_encode((object)$http, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
