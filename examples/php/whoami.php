<?php
// whoami.php?ms=N answers after N milliseconds with the name of the PHP-FPM pool that served it
// (env[BACKEND] in the pool's config, "unknown" without) and the worker's pid, in the body and
// in X-Backend / X-Pid headers. The pool tests use it to tell two PHP-FPM instances apart.
$ms = max(0, (int)($_GET['ms'] ?? 0));
if ($ms > 0) {
    usleep($ms * 1000);
}
$name = getenv('BACKEND') ?: 'unknown';
header('Content-Type: text/plain');
header('X-Backend: ' . $name);
header('X-Pid: ' . getmypid());
echo $name . ' ' . getmypid() . "\n";
