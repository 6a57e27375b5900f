// Command webtest is the test image of the local cluster's real nodes: a static HTTP server
// that also answers the questions tests ask from inside a pod (who am I, can I reach that
// address, what is in this file), as HTTP endpoints and as exec subcommands.
//
//	webtest [serve]           HTTP on :$PORT (8080): /, /id, /dial?addr=, /get?url=, /file?path=
//	webtest id                uid, gid and groups
//	webtest dial HOST:PORT    "connected", or exit 1 with the error
//	webtest get URL           the body of an HTTP GET, or exit 1
//	webtest cat PATH          the file's content
//	webtest write PATH TEXT   write TEXT to PATH
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func identity() string {
	groups, _ := os.Getgroups()
	return fmt.Sprintf("uid=%d gid=%d groups=%v", os.Getuid(), os.Getgid(), groups)
}

func dial(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}

func get(url string) (string, error) {
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return string(body), nil
}

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	mux.HandleFunc("/id", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, identity())
	})
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		if err := dial(r.URL.Query().Get("addr")); err != nil {
			http.Error(w, "error: "+err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, "connected")
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		body, err := get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, "error: "+err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprint(w, body)
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Query().Get("path")
		if r.Method == http.MethodPut {
			data, err := io.ReadAll(r.Body)
			if err == nil {
				err = os.WriteFile(path, data, 0o644)
			}
			if err != nil {
				http.Error(w, "error: "+err.Error(), http.StatusInternalServerError)
				return
			}
			fmt.Fprintln(w, "written")
			return
		}
		data, err := os.ReadFile(path)
		if err != nil {
			http.Error(w, "error: "+err.Error(), http.StatusNotFound)
			return
		}
		w.Write(data)
	})
	return mux
}

func serve() error {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{Addr: ":" + port, Handler: handler(), ReadHeaderTimeout: 5 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	fmt.Printf("webtest listening on :%s as %s\n", port, identity())
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Println("webtest stopped")
	return nil
}

func run(args []string) error {
	if len(args) == 0 || args[0] == "serve" {
		return serve()
	}
	need := func(n int) error {
		if len(args) != n+1 {
			return fmt.Errorf("%s takes %d argument(s)", args[0], n)
		}
		return nil
	}
	switch args[0] {
	case "id":
		fmt.Println(identity())
	case "dial":
		if err := need(1); err != nil {
			return err
		}
		if err := dial(args[1]); err != nil {
			return err
		}
		fmt.Println("connected")
	case "get":
		if err := need(1); err != nil {
			return err
		}
		body, err := get(args[1])
		if err != nil {
			return err
		}
		fmt.Print(body)
	case "cat":
		if err := need(1); err != nil {
			return err
		}
		data, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		os.Stdout.Write(data)
	case "write":
		if err := need(2); err != nil {
			return err
		}
		return os.WriteFile(args[1], []byte(args[2]), 0o644)
	default:
		return fmt.Errorf("unknown command %q (serve, id, dial, get, cat, write)", args[0])
	}
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, strings.TrimSpace("webtest: "+err.Error()))
		os.Exit(1)
	}
}
