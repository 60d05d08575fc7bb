print("fcgiproxy")
