module onyxia.local/pause

go 1.22
