<?php
// Answers at once, without reading the request body.
header('Content-Type: text/plain');
echo "early answer\n";
