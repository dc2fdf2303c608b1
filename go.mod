module github.com/vmtriage/vmtriage

go 1.26
