module github.com/sluicehq/sluice/cmd/sluice/testdata/kitchen/go

go 1.26.0

require github.com/sluicehq/sluice/guest-sdk/go v0.0.0

replace github.com/sluicehq/sluice/guest-sdk/go => ../../../../../guest-sdk/go
