package s3store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// childEnv makes the test binary act as a child process (TestMain): the
// environment-only client, or an upload that is killed mid-way.
const childEnv = "S3STORE_TEST_CHILD"

func childMain() int {
	if err := runChild(os.Getenv(childEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

func runChild(mode string) error {
	ctx := context.Background()
	o, key, err := ParseURL(os.Getenv("S3STORE_TEST_URL"))
	if err != nil {
		return err
	}
	switch mode {
	case "envput":
		// Only the URL and the environment: no endpoint, no keys here.
		s, err := New(ctx, o)
		if err != nil {
			return err
		}
		u, err := s.Create(ctx, key, UploadOptions{})
		if err != nil {
			return err
		}
		if _, err := u.Write([]byte("written with the environment only\n")); err != nil {
			return err
		}
		_, err = u.Commit(ctx)
		return err
	case "upload":
		// Upload S3STORE_TEST_SIZE bytes of testData(seed); once
		// S3STORE_TEST_PARTS parts are recorded in the state file, print
		// READY and wait to be killed, with more parts in flight.
		o.AccessKeyID = os.Getenv("S3STORE_TEST_KEY")
		o.SecretAccessKey = os.Getenv("S3STORE_TEST_SECRET")
		o.PartSize, o.MaxPartSize, o.PartGrowEvery = MinPartSize, 4*MinPartSize, 2
		s, err := New(ctx, o)
		if err != nil {
			return err
		}
		size, _ := strconv.Atoi(os.Getenv("S3STORE_TEST_SIZE"))
		seed, _ := strconv.ParseUint(os.Getenv("S3STORE_TEST_SEED"), 10, 64)
		want, _ := strconv.Atoi(os.Getenv("S3STORE_TEST_PARTS"))
		state := os.Getenv("S3STORE_TEST_STATE")
		u, err := s.Create(ctx, key, UploadOptions{StateFile: state})
		if err != nil {
			return err
		}
		data := testData(seed, size)
		ready := false
		for off := 0; off < len(data); off += 1 << 20 {
			if _, err := u.Write(data[off:min(off+1<<20, len(data))]); err != nil {
				return err
			}
			if !ready {
				if st, err := ReadState(state); err == nil && len(st.Parts) >= want {
					fmt.Println("READY")
					ready = true
					// Block: the parent kills us here, mid-upload.
					bufio.NewReader(os.Stdin).ReadString('\n')
					return fmt.Errorf("not killed")
				}
			}
		}
		for {
			if st, err := ReadState(state); err == nil && len(st.Parts) >= want {
				fmt.Println("READY")
				bufio.NewReader(os.Stdin).ReadString('\n')
				return fmt.Errorf("not killed")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return fmt.Errorf("unknown child mode %q", mode)
}

func completeInput(s *Store, key, id string, parts []PartInfo, ifNoneMatch bool) *s3.CompleteMultipartUploadInput {
	cp := make([]types.CompletedPart, len(parts))
	crcs := make([]uint32, len(parts))
	for i, p := range parts {
		cp[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag), ChecksumCRC32C: aws.String(crcString(p.CRC32C))}
		crcs[i] = p.CRC32C
	}
	whole, _, _ := strings.Cut(compositeCRC(crcs), "-")
	in := &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, UploadId: &id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cp},
		ChecksumCRC32C:  &whole,
		ChecksumType:    types.ChecksumTypeComposite,
	}
	if ifNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	return in
}
