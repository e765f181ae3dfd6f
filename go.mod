module github.com/ysync/ysync

go 1.26
