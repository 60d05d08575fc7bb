import FastCGI
