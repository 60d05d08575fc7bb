print("fcgi-demo")
