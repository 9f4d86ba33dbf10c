package admin_test

func stopBinaries() {}
