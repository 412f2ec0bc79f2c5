package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strconv"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"authwatch/internal/browser"
)

func main() {
	base, pw, hash, out := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	ctx, cancel, err := browser.New(context.Background(), browser.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer cancel()
	go func() {
		for ev, err := range chromedp.Events(ctx, runtime.ExceptionThrown) {
			if err != nil {
				return
			}
			fmt.Println("EXCEPTION:", ev.ExceptionDetails.Text, ev.ExceptionDetails.Exception.Description)
		}
	}()
	go func() {
		for ev, err := range chromedp.Events(ctx, runtime.ConsoleAPICalled) {
			if err != nil {
				return
			}
			for _, a := range ev.Args {
				fmt.Println("CONSOLE", ev.Type, string(a.Value), a.Description)
			}
		}
	}()
	w, _ := strconv.Atoi(os.Getenv("W"))
	if w == 0 {
		w = 1366
	}
	browser.Emulate(ctx, int64(w), 768, "America/Sao_Paulo", "pt_BR")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"login.html"), chromedp.SendKeys(chromedp.ID("username"), "admin"), chromedp.SendKeys(chromedp.ID("password"), pw), chromedp.Click(chromedp.ID("submit"))); err != nil {
		log.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+hash)); err != nil {
		log.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if len(os.Args) > 5 {
		v, err := browser.Eval[any](ctx, os.Args[5])
		fmt.Println("EVAL", v, err)
		time.Sleep(2 * time.Second)
	}
	if err := browser.Screenshot(ctx, out); err != nil {
		log.Fatal(err)
	}
	txt, _ := browser.Eval[string](ctx, "document.body.innerText.slice(0,1500)")
	fmt.Println(txt)
}
