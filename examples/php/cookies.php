<?php
// Three separate Set-Cookie header lines.
setcookie('first', 'one');
setcookie('second', 'two', ['path' => '/', 'httponly' => true]);
setcookie('third', 'three, with comma', ['path' => '/dir/']);
header('Content-Type: text/plain');
echo "three cookies\n";
