<?php
// Hello-world page of the fcgiproxy PHP example app.
header('Content-Type: text/html; charset=utf-8');
$pages = [
    'info.php/extra/path?x=1&y=two' => 'CGI variables (SCRIPT_NAME, PATH_INFO, ...) as JSON',
    'headers.php' => 'HTTP_* variables received by PHP',
    'cookies.php' => 'three Set-Cookie headers',
    'status.php?code=404' => 'status set by PHP (404)',
    'redirect.php?to=/index.php' => 'redirect (301)',
    'big.php?mb=1' => 'a 1 MiB streamed response',
    'sleep.php?s=1' => 'a response after 1 s',
    'dir/' => 'index script of a folder',
];
?>
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>fcgiproxy example</title></head>
<body>
<h1>Hello, world!</h1>
<p>Served by PHP <?= htmlspecialchars(PHP_VERSION) ?> through
<?= htmlspecialchars($_SERVER['SERVER_SOFTWARE'] ?? 'a FastCGI front end') ?>.</p>
<ul>
<?php foreach ($pages as $href => $text): ?>
  <li><a href="/<?= htmlspecialchars($href) ?>"><?= htmlspecialchars($href) ?></a> — <?= htmlspecialchars($text) ?></li>
<?php endforeach; ?>
</ul>
<form method="post" action="/post.php"><input name="greeting" value="hi"> <button>POST</button></form>
<form method="post" action="/upload.php" enctype="multipart/form-data"><input type="file" name="file"> <button>Upload</button></form>
</body>
</html>
